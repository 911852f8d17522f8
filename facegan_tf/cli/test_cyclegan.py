"""Translate images with a trained CycleGAN generator (a checkpoint of ours or a legacy one).

Examples:
    python tools/test_cyclegan.py --checkpoint_dir=./checkpoint --data_dir=./datasets/x
    python tools/test_cyclegan.py --checkpoint_dir=./legacy/horse2zebra_256 \\
        --source=./photos --which_direction=BtoA --test_dir=./out
"""

from __future__ import annotations

import json

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "checkpoint_dir",
    "./checkpoint",
    "A facegan_tf CycleGAN checkpoint folder, or an xhujoy TF1 checkpoint folder "
    "(its <dataset>_<fine_size> sub-folder is found automatically).",
)
flags.DEFINE_string("dataset_dir", None, "Data folder; testA (AtoB) or testB (BtoA) is used.")
flags.DEFINE_string("data_dir", None, "Alias of --dataset_dir.")
flags.DEFINE_string("source", None, "A folder of images (or one image) to translate instead.")
flags.DEFINE_enum("which_direction", "AtoB", ["AtoB", "BtoA"], "AtoB uses generator A->B.")
flags.DEFINE_string("test_dir", "./test", "Output folder (<direction>_<name> files + index.html).")
flags.DEFINE_integer(
    "fine_size",
    256,
    "Images are resized to fine_size x fine_size. Default: the run's own fine_size for a "
    "facegan_tf run, 256 (the original's) for an xhujoy checkpoint.",
    lower_bound=8,
)
flags.DEFINE_bool(
    "legacy_bytescale",
    False,
    "Min-max stretch inputs and outputs like the original's scipy.misc I/O.",
)
flags.DEFINE_enum(
    "output_format",
    "keep",
    ["keep", "png"],
    "keep: same name and extension as the input (original); png: write PNG.",
)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    dataset_dir = common.first_set("dataset_dir", "data_dir")
    from facegan_tf.training.cyclegan_inference import translate

    result = translate(
        FLAGS.checkpoint_dir,
        FLAGS.source,
        dataset_dir,
        FLAGS.which_direction,
        FLAGS.test_dir,
        FLAGS.fine_size if FLAGS["fine_size"].present else None,
        FLAGS.legacy_bytescale,
        FLAGS.output_format,
    )
    print(
        json.dumps(
            {
                "written": len(result["written"]),
                "skipped": result["skipped"],
                "index": result["index"],
                "checkpoint": result["checkpoint"],
                "checkpoint_source": result["checkpoint_source"],
            }
        )
    )
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
