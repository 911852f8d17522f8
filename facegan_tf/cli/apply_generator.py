"""Apply a trained or migrated generator to a folder of photos (or sample a latent model).

Writes output images, apply_manifest.json and index.html (input | output(s)) into
--output_dir. See docs/export.md.

Examples:
    python tools/apply_generator.py --model=runs/horse2zebra --source=photos/ \\
        --output_dir=out/h2z --direction=AtoB
    python tools/apply_generator.py --model=runs/ipcgan --source=faces/ --output_dir=out/aged \\
        --age_groups=2,4
    python tools/apply_generator.py --model=runs/cgan --output_dir=out/cgan --num_samples=32 \\
        --class_label=1
"""

from __future__ import annotations

import json

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "model",
    None,
    "Run folder of ours, converted folder, legacy TF1 checkpoint, or an exported "
    "generator.keras.",
)
flags.DEFINE_string("source", None, "Image file or folder of images (image-to-image models).")
flags.DEFINE_string("output_dir", None, "Folder for the outputs, apply_manifest.json, index.html.")
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "CycleGAN: which generator to apply.")
flags.DEFINE_list(
    "age_groups",
    ["1", "2", "3", "4"],
    "IPCGAN: target age-group indices 0..age_groups-1 (CACD: 0 = 11-20 ... 4 = 50+); one "
    "output per group.",
)
flags.DEFINE_integer("num_samples", 16, "DCGAN/cGAN: number of samples.", lower_bound=1)
flags.DEFINE_integer("class_label", 0, "cGAN: class of the samples.", lower_bound=0)
flags.DEFINE_integer("batch_size", 4, "Images per generator call.", lower_bound=1)
flags.DEFINE_bool(
    "keep_aspect",
    True,
    "true: keep each input's aspect ratio and write outputs at the input's size; false: "
    "resize to image_size x image_size and write that (the originals' behaviour).",
)
flags.DEFINE_integer(
    "image_size",
    0,
    "Network side (CycleGAN fine_size, IPCGAN 128); 0: the run's value or the original's.",
    lower_bound=0,
)
flags.DEFINE_integer("seed", 0, "Seed of the latent vectors (DCGAN/cGAN).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    for name in ("model", "output_dir"):
        if not FLAGS[name].value:
            raise ValueError(f"--{name} is required.")
    try:
        groups = [int(g) for g in FLAGS.age_groups]
    except ValueError:
        raise ValueError(
            f"--age_groups must be integers. Received: age_groups={','.join(FLAGS.age_groups)}"
        ) from None
    common.quiet_tensorflow()
    from facegan_tf.export import IMAGE_KINDS, load_serving_generator
    from facegan_tf.training.apply import apply_generator, collect_sources

    model, info = load_serving_generator(FLAGS.model, FLAGS.direction, FLAGS.image_size or None)
    if model.kind in IMAGE_KINDS:
        collect_sources(FLAGS.source)
    result = apply_generator(
        model,
        info,
        FLAGS.output_dir,
        source=FLAGS.source,
        direction=FLAGS.direction,
        age_groups=groups,
        num_samples=FLAGS.num_samples,
        class_label=FLAGS.class_label,
        batch_size=FLAGS.batch_size,
        keep_aspect=FLAGS.keep_aspect,
        image_size=FLAGS.image_size or None,
        seed=FLAGS.seed,
        progress=FLAGS.progress,
    )
    print(
        json.dumps(
            {
                "kind": result["kind"],
                "written": sum(len(row["outputs"]) for row in result["rows"]),
                "skipped": result["skipped"],
                "index": result["index"],
            }
        )
    )
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
