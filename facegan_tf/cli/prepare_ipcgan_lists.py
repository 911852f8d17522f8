"""Build IPCGAN list files from a folder of aligned faces and an age table.

The original published no data-preparation code. This writes its formats:
``train_age_group_<k>.txt``, ``test_age_group_<k>.txt``, ``source.txt`` and
``train_label_pair.txt`` (see `facegan_tf.data.ipcgan_lists`).

Examples:
    python tools/prepare_ipcgan_lists.py --image_dir=./CACD_cropped_400 --output_dir=./data/cacd
    python tools/prepare_ipcgan_lists.py --image_dir=./faces --age_table=ages.csv \\
        --output_dir=./data/faces --age_groups=11-20,21-30,31-40,41-50,51-
"""

from __future__ import annotations

import json

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("image_dir", None, "Folder of aligned faces (list names are relative to it; "
                    "use it as --root_folder of train_ipcgan).")
flags.DEFINE_string("output_dir", None, "Folder for the list files (--list_dir of train_ipcgan).")
flags.DEFINE_string("age_table", None, "CSV with file name and age (header name/file + age, or "
                    "two columns). Default: ages from CACD names '<age>_<First>_<Last>_<N>.jpg'.")
flags.DEFINE_string("age_groups", "11-20,21-30,31-40,41-50,51-", "Inclusive age ranges, "
                    "ascending; '51-' is open-ended (the CACD groups of the original).")
flags.DEFINE_float("test_fraction", 0.1, "Fraction of each group written to the test lists.")
flags.DEFINE_enum("split", "random", ["random", "every_nth"], "random (seeded) or every "
                  "round(1/test_fraction)-th face to test.")
flags.DEFINE_integer("seed", 0, "Seed of the split and of the label-pair order.")
flags.DEFINE_integer("label_pair_repeats", 20000, "Repeats of each ordered pair in "
                     "train_label_pair.txt (the original: 20000).", lower_bound=1)
flags.DEFINE_integer("source_group", 0, "Group whose training faces form source.txt.",
                     lower_bound=0)
flags.mark_flags_as_required(["image_dir", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    from facegan_tf.data.ipcgan_lists import build_lists_from_folder

    counts = build_lists_from_folder(
        FLAGS.image_dir, FLAGS.output_dir, FLAGS.age_table, FLAGS.age_groups,
        FLAGS.test_fraction, FLAGS.split, FLAGS.seed, FLAGS.label_pair_repeats,
        FLAGS.source_group,
    )
    print(json.dumps(counts, indent=1))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
