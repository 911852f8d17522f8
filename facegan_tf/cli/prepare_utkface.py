"""Build a CycleGAN data folder (trainA/ trainB/ testA/ testB/) from UTKFace.

Examples:
    python tools/prepare_utkface.py --utkface_dir=./UTKFace --output_dir=./datasets/aging
    python tools/prepare_utkface.py --utkface_dir=./UTKFace --split=gender \\
        --output_dir=./datasets/male2female
"""

from __future__ import annotations

import json

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("utkface_dir", None, "Folder of UTKFace images ([age]_[gender]_[race]_...).")
flags.DEFINE_string("output_dir", None, "Folder to create trainA/ trainB/ testA/ testB/ in.")
flags.DEFINE_enum(
    "split",
    "age",
    ["age", "gender"],
    "age: A and B are age ranges; gender: A = male (0), B = female (1).",
)
flags.DEFINE_string("domain_a_ages", "18-25", "Age range of domain A (inclusive), for --split=age.")
flags.DEFINE_string("domain_b_ages", "50-60", "Age range of domain B (inclusive), for --split=age.")
flags.DEFINE_float(
    "test_fraction",
    0.1,
    "Fraction of each domain put in testA/testB (deterministic, by a hash of the file name).",
)
flags.DEFINE_enum(
    "link",
    "auto",
    ["auto", "symlink", "hardlink", "copy"],
    "How files are placed; auto links when it can and copies otherwise.",
)
flags.mark_flags_as_required(["utkface_dir", "output_dir"])


def parse_range(text: str, flag: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"--{flag} must look like 18-25. Received: {text!r}") from None
    return low, high


def age_span_text(ages) -> str:
    """Sorted distinct ages as compact ranges, e.g. ``1-3, 7, 20-22``."""
    spans = []
    for age in sorted(set(ages)):
        if spans and age == spans[-1][1] + 1:
            spans[-1][1] = age
        else:
            spans.append([age, age])
    return ", ".join(f"{low}-{high}" if high > low else f"{low}" for low, high in spans)


def check_age_ranges(records, domain_a, domain_b) -> None:
    """Refuses age ranges that select no face for a domain (before any folder is made)."""
    for flag, (low, high), other in (
        ("domain_a_ages", domain_a, domain_b),
        ("domain_b_ages", domain_b, domain_a),
    ):
        if not any(
            low <= r.age <= high and not other[0] <= r.age <= other[1] for r in records
        ):
            raise ValueError(
                f"--{flag}={low}-{high} matches no face (ages found: "
                f"{age_span_text(r.age for r in records) or 'none'}); nothing was written. "
                f"Received: {flag}={low}-{high}"
            )


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    from facegan_tf.data.utkface import build_cyclegan_folder, scan_utkface

    records, malformed = scan_utkface(FLAGS.utkface_dir)
    domain_a = parse_range(FLAGS.domain_a_ages, "domain_a_ages")
    domain_b = parse_range(FLAGS.domain_b_ages, "domain_b_ages")
    if FLAGS.split == "age":
        check_age_ranges(records, domain_a, domain_b)
    counts = build_cyclegan_folder(
        records,
        FLAGS.output_dir,
        split=FLAGS.split,
        domain_a=domain_a,
        domain_b=domain_b,
        test_fraction=FLAGS.test_fraction,
        mode=FLAGS.link,
    )
    counts["skipped_malformed_names"] = len(malformed)
    if malformed:
        print(f"skipped {len(malformed)} file(s) with malformed names, e.g. {malformed[:3]}")
    print(json.dumps(counts))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
