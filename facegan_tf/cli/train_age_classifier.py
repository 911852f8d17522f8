"""Train IPCGAN's identity AlexNet and age head on labelled faces.

The authors' pretrained ``alexnet.model-292000`` / ``age_classifier.model-300000`` are no
longer downloadable; the result of this tool replaces both (pass its --checkpoint_dir as
``--alexnet_pretrained_model`` and ``--age_pretrained_model`` of train_ipcgan).

Example:
    python tools/train_age_classifier.py --list_dir=./data/cacd --root_folder=./CACD_cropped_400
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("list_dir", "./data/ipcgan_lists", "Folder with train_age_group_<k>.txt.")
flags.DEFINE_string("root_folder", "CACD_cropped_400/", "Image root of the list names.")
flags.DEFINE_integer("age_groups", 5, "Number of age groups.", lower_bound=2)
flags.DEFINE_integer("batch_size", 32, "Global batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate.")
flags.DEFINE_integer("max_steps", 100000, "Total training steps.", lower_bound=1)
flags.DEFINE_float("identity_loss_weight", 1.0, "Weight of the identity cross-entropy "
                   "(identities from CACD names); 0 trains the age head and trunk only.")
flags.DEFINE_list("conv_filters", ["96", "256", "384", "384", "256"], "conv1..conv5 widths.")
flags.DEFINE_integer("fc_units", 4096, "fc6/fc7 and age_fc6/age_fc7 width.", lower_bound=1)
flags.DEFINE_integer("input_size", 227, "AlexNet input side.", lower_bound=67)
flags.DEFINE_string("checkpoint_dir", "./checkpoints/pre_trained/alexnet_age",
                    "Checkpoint folder (resumed when it already holds a run).")
flags.DEFINE_string("summary_dir", None,
                    "TensorBoard/JSONL folder (default <checkpoint_dir>/logs).")
flags.DEFINE_integer("save_interval", 10000, "Save every this many steps.", lower_bound=1)
flags.DEFINE_integer("log_freq", 10, "Write losses every this many steps.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "default: one device; mirrored: MirroredStrategy over all visible GPUs (or the "
                  "configured logical CPUs); multi_worker: MultiWorkerMirroredStrategy from "
                  "TF_CONFIG. "
                  "--batch_size is global and must divide by the number of replicas.")
flags.DEFINE_bool(
    "mixed_precision",
    False,
    "Compute in float16 with float32 variables and losses; dynamic loss scaling for every "
    "optimizer (steps with non-finite scaled gradients are skipped).",
)
flags.DEFINE_bool(
    "xla", False, "Compile the per-replica forward/backward passes with XLA (jit_compile)."
)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    from facegan_tf.training.age_classifier import (
        AgeClassifierConfig,
        AgeClassifierTrainer,
        existing_run,
    )
    from facegan_tf.training.checkpointing import run_status

    try:
        conv_filters = tuple(int(v) for v in FLAGS.conv_filters)
    except ValueError:
        raise ValueError(
            f"--conv_filters must be integers. Received: conv_filters={FLAGS.conv_filters}"
        ) from None
    config = AgeClassifierConfig(
        list_dir=FLAGS.list_dir, image_root=FLAGS.root_folder, age_groups=FLAGS.age_groups,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
        max_steps=FLAGS.max_steps, identity_loss_weight=FLAGS.identity_loss_weight,
        conv_filters=conv_filters, fc_units=FLAGS.fc_units, input_size=FLAGS.input_size,
        checkpoint_dir=FLAGS.checkpoint_dir, log_dir=FLAGS.summary_dir,
        save_interval=FLAGS.save_interval, log_freq=FLAGS.log_freq, seed=FLAGS.seed,
        strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision,
        xla=FLAGS.xla,
    )
    trainer = AgeClassifierTrainer(config)
    if existing_run(config.checkpoint_dir) is not None:
        print(f"resumed {trainer.restore()} at step {int(trainer.step.numpy())}")
    with run_status(trainer.checkpoint, trainer.step):
        summary = trainer.fit()
    print(json.dumps(summary))
    print(f"use as: --alexnet_pretrained_model={os.path.abspath(config.checkpoint_dir)} "
          f"--age_pretrained_model={os.path.abspath(config.checkpoint_dir)}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
