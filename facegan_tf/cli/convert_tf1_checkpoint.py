"""Convert a legacy TF1 checkpoint of an original repository into a facegan_tf checkpoint.

The result is a run folder that the test tools and ``--continue_train`` accept. TF1
checkpoints of the originals hold no usable optimiser state (xhujoy saved model variables
only), so training resumed from a converted checkpoint starts with fresh Adam moments at
``--start_epoch``.

Example:
    python tools/convert_tf1_checkpoint.py --kind=cyclegan_xhujoy \\
        --tf1_checkpoint=./checkpoint/horse2zebra_256 --output_dir=./converted
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_enum(
    "kind",
    None,
    ["cyclegan_xhujoy", "dcgan_sualab", "ipcgan", "ipcgan_alexnet", "ipcgan_age_classifier"],
    "Which original wrote the checkpoint.",
)
flags.DEFINE_string("tf1_checkpoint", None, "Legacy checkpoint folder or prefix.")
flags.DEFINE_string("output_dir", None, "New facegan_tf checkpoint folder (must not hold a run).")
flags.DEFINE_integer(
    "fine_size", 256, "CycleGAN: image size the run will train/test at.", lower_bound=8
)
flags.DEFINE_integer(
    "start_epoch", 0, "CycleGAN: epoch a --continue_train run starts from.", lower_bound=0
)
flags.mark_flags_as_required(["kind", "tf1_checkpoint", "output_dir"])


def convert_cyclegan_xhujoy(
    tf1_checkpoint: str, output_dir: str, fine_size: int = 256, start_epoch: int = 0
) -> dict:
    """Legacy xhujoy checkpoint -> a facegan_tf CycleGAN run folder at step 0."""
    from facegan_tf.migrate import load_legacy_with_info
    from facegan_tf.training.checkpointing import read_run_info
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

    if read_run_info(output_dir) is not None:
        raise ValueError(
            f"--output_dir {output_dir!r} already holds a run; choose an empty folder."
        )
    legacy_models, info = load_legacy_with_info("cyclegan_xhujoy", tf1_checkpoint)
    config = CycleGANConfig(
        fine_size=fine_size,
        load_size=max(286, fine_size) if fine_size == 256 else fine_size,
        use_resnet=info["use_resnet"],
        ngf=info["ngf"],
        ndf=info["ndf"],
        num_blocks=info["num_blocks"] or 9,
        input_nc=info["input_nc"],
        output_nc=info["output_nc"],
        epoch_step=100 if start_epoch <= 100 else start_epoch,
        checkpoint_dir=output_dir,
    )
    trainer = CycleGANTrainer(config)
    for name, model in trainer.models.items():
        model.set_weights(legacy_models[name].get_weights())
    trainer.epoch.assign(start_epoch)
    path = trainer.save()
    return {
        "checkpoint": path,
        "source": info["prefix"],
        "tensors_loaded": len(info["loaded"]),
        "tensors_ignored": len(info["ignored"]),
        **{k: info[k] for k in ("use_resnet", "ngf", "ndf", "num_blocks", "input_nc", "output_nc")},
    }


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    kind = FLAGS.kind
    source = FLAGS.tf1_checkpoint
    if not (os.path.exists(source) or os.path.isfile(source + ".index")):
        raise FileNotFoundError(
            f"--tf1_checkpoint {source!r} does not exist: expected the original's checkpoint "
            f"folder or a prefix P with a file P.index. Received: tf1_checkpoint={source!r}"
        )
    if kind == "cyclegan_xhujoy":
        result = convert_cyclegan_xhujoy(
            FLAGS.tf1_checkpoint, FLAGS.output_dir, FLAGS.fine_size, FLAGS.start_epoch
        )
    elif kind == "dcgan_sualab":
        from facegan_tf.migrate.dcgan_sualab import convert_dcgan_sualab

        result = convert_dcgan_sualab(FLAGS.tf1_checkpoint, FLAGS.output_dir)
    else:
        from facegan_tf.migrate.ipcgan import convert_ipcgan

        result = convert_ipcgan(kind, FLAGS.tf1_checkpoint, FLAGS.output_dir)
    print(json.dumps(result, default=str))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
