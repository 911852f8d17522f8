"""Train the sualab DCGAN (FFHQ thumbnails, 64 x 64) with per-epoch FID; flags keep sualab's names.

Examples:
    python tools/train_dcgan.py --demo
    python tools/train_dcgan.py --data_dir=data/FFHQ/thumbnails128x128 --save_dir=runs/dcgan
    python tools/train_dcgan.py --save_dir=runs/dcgan --resume
    python tools/train_dcgan.py --save_dir=<convert_tf1_checkpoint --kind=dcgan_sualab output> \
        --resume --G_FC_layer_channel=512 --G_channel=64 --D_channel=64
"""

from __future__ import annotations

import json
import os

from absl import flags
from absl import logging as absl_logging

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "data_dir",
    "data/FFHQ/thumbnails128x128",
    "Folder of face images (sualab: the 70,000 FFHQ 128x128 thumbnails).",
)
flags.DEFINE_string(
    "save_dir",
    "./DCGAN_training_FFHQ_z_100_96crop",
    "Run folder: checkpoints, best/, samples/, logs/, learning_curve.png.",
)
flags.DEFINE_integer("image_size", 64, "Training resolution (power of two >= 8).", lower_bound=8)
flags.DEFINE_integer("crop_size", 96, "Centre crop before resizing (0: none).", lower_bound=0)
flags.DEFINE_integer("batch_size", 64, "Images per batch per replica.", lower_bound=1)
flags.DEFINE_integer("num_epochs", 100, "Training epochs.", lower_bound=1)
flags.DEFINE_float("init_learning_rate", 2e-4, "Adam learning rate (G and D).")
flags.DEFINE_float(
    "beta1",
    0.9,
    "Adam beta1. 0.9 is what sualab actually ran (its momentum=0.5 "
    "never reached Adam); 0.5 is the DCGAN paper's value.",
)
flags.DEFINE_float("beta2", 0.999, "Adam beta2.")
flags.DEFINE_float("eps", 1e-8, "Adam epsilon (TF1 default 1e-8; Keras' default is 1e-7).")
flags.DEFINE_integer("z_dim", 100, "Latent size.", lower_bound=1)
flags.DEFINE_enum(
    "z_distribution", "uniform", ["uniform", "normal"], "z ~ U(-1, 1) (sualab) or N(0, 1)."
)
flags.DEFINE_integer("G_FC_layer_channel", 512, "Channels of G's 4x4 dense output.", lower_bound=1)
flags.DEFINE_integer(
    "G_channel", 64, "G base width (transposed convs 4x, 2x, 1x, then RGB).", lower_bound=1
)
flags.DEFINE_integer("D_channel", 64, "D base width (convs 1x, 2x, 4x, 8x).", lower_bound=1)
flags.DEFINE_integer(
    "g_steps_per_d", 2, "Generator updates per discriminator update (sualab 2).", lower_bound=1
)
flags.DEFINE_bool(
    "d_stats_in_g_updates",
    True,
    "Each G update also runs D in training mode on the real batch, as the original's "
    "batch-norm update ops do (D's moving statistics: 6 updates per step). "
    "--nod_stats_in_g_updates: only the passes each update needs (4).",
)
flags.DEFINE_integer(
    "eval_sample_size", 10000, "Generated images per FID evaluation.", lower_bound=2
)
flags.DEFINE_integer(
    "batch_size_eval", 50, "Batch size when generating for FID and grids.", lower_bound=1
)
flags.DEFINE_integer(
    "eval_every_epochs",
    1,
    "Evaluate FID/KID every this many epochs (and at the last).",
    lower_bound=1,
)
flags.DEFINE_float(
    "score_threshold", 1e-4, "Keep a new best checkpoint when FID < best * (1 - score_threshold)."
)
flags.DEFINE_integer("sample_H", 20, "Rows of the per-epoch sample grid.", lower_bound=1)
flags.DEFINE_integer("sample_W", 16, "Columns of the per-epoch sample grid.", lower_bound=1)
flags.DEFINE_integer("log_every_steps", 10, "Write losses every this many steps.", lower_bound=1)
flags.DEFINE_integer("max_steps", 0, "Stop after this many steps (0: no limit).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of every random draw (data order, z).")
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy: one device, MirroredStrategy over the visible GPUs (or logical "
    "CPUs), or MultiWorkerMirroredStrategy from TF_CONFIG. --batch_size is per replica.",
)
flags.DEFINE_bool(
    "sync_batch_norm",
    False,
    "Batch-norm statistics over all replicas (one step on N replicas then equals one step on "
    "one device with the global batch); default: per-replica statistics.",
)
flags.DEFINE_bool(
    "mixed_precision",
    False,
    "mixed_float16 compute with dynamic loss scaling; variables and losses stay float32.",
)
flags.DEFINE_bool(
    "xla", False, "Compile the per-replica forward/backward passes with XLA (jit_compile)."
)
flags.DEFINE_bool(
    "resume", False, "Continue the run in --save_dir (models, optimizers, step, epoch, best FID)."
)
flags.DEFINE_alias("continue_train", "resume")
flags.DEFINE_bool("fid", True, "Compute FID/KID at evaluations (--nofid: skip them).")
flags.DEFINE_string(
    "fid_weights",
    "",
    "FID Inception weights file (default: the standard "
    "location; if missing, FID is skipped with instructions).",
)
flags.DEFINE_integer(
    "fid_batch_size", 16, "Images per FID feature-extraction batch.", lower_bound=1
)
flags.DEFINE_bool(
    "demo",
    False,
    "Train a tiny DCGAN on the 100 embedded LFW faces "
    "(scikit-image) at 32x32; explicitly given flags still win.",
)
flags.DEFINE_string("demo_dir", "./demo_output/dcgan", "Run folder of --demo.")

#: --demo preset: about two minutes of training on a 2-core CPU, FID/KID at the end only.
DEMO_PRESET = {
    "image_size": 32,
    "crop_size": 0,
    "batch_size": 20,
    "num_epochs": 60,
    "G_FC_layer_channel": 64,
    "G_channel": 16,
    "D_channel": 16,
    "beta1": 0.5,
    "eval_sample_size": 100,
    "eval_every_epochs": 60,
    "sample_H": 8,
    "sample_W": 8,
    "log_every_steps": 5,
}


def resolve_config():
    """Flags -> `DCGANConfig` (applying the --demo preset)."""
    from facegan_tf.training.dcgan import DCGANConfig

    preset = dict(DEMO_PRESET) if FLAGS.demo else {}
    if FLAGS.demo:
        preset["save_dir"] = FLAGS.demo_dir
    return DCGANConfig(
        data_dir="demo:lfw" if FLAGS.demo and not FLAGS["data_dir"].present else FLAGS.data_dir,
        save_dir=common.flag_or_preset("save_dir", preset),
        image_size=common.flag_or_preset("image_size", preset),
        crop_size=common.flag_or_preset("crop_size", preset),
        batch_size=common.flag_or_preset("batch_size", preset),
        num_epochs=common.flag_or_preset("num_epochs", preset),
        init_learning_rate=FLAGS.init_learning_rate,
        beta1=common.flag_or_preset("beta1", preset),
        beta2=FLAGS.beta2,
        eps=FLAGS.eps,
        z_dim=FLAGS.z_dim,
        z_distribution=FLAGS.z_distribution,
        fc_channels=common.flag_or_preset("G_FC_layer_channel", preset),
        g_channels=common.flag_or_preset("G_channel", preset),
        d_channels=common.flag_or_preset("D_channel", preset),
        g_steps_per_d=FLAGS.g_steps_per_d,
        d_stats_in_g_updates=FLAGS.d_stats_in_g_updates,
        eval_sample_size=common.flag_or_preset("eval_sample_size", preset),
        batch_size_eval=FLAGS.batch_size_eval,
        eval_every_epochs=common.flag_or_preset("eval_every_epochs", preset),
        score_threshold=FLAGS.score_threshold,
        sample_H=common.flag_or_preset("sample_H", preset),
        sample_W=common.flag_or_preset("sample_W", preset),
        log_every_steps=common.flag_or_preset("log_every_steps", preset),
        max_steps=FLAGS.max_steps,
        seed=FLAGS.seed,
        strategy=FLAGS.strategy,
        sync_batch_norm=FLAGS.sync_batch_norm,
        mixed_precision=FLAGS.mixed_precision,
        xla=FLAGS.xla,
    )


def load_training_faces(config):
    """The training set of ``config`` (the embedded LFW faces for ``demo:lfw``)."""
    from facegan_tf.data.faces import demo_face_set, load_face_folder
    from facegan_tf.training.progress import ProgressBar

    if config.data_dir == "demo:lfw":
        return demo_face_set(config.image_size)
    bar = ProgressBar(None, label="loading images", unit="img")
    faces = load_face_folder(config.data_dir, config.crop_size, config.image_size, bar.update)
    bar.close()
    return faces


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    absl_logging.set_verbosity(absl_logging.WARNING)
    config = resolve_config()
    from facegan_tf.training.checkpointing import run_status
    from facegan_tf.training.dcgan import DCGANTrainer
    from facegan_tf.training.gan_loop import check_new_run
    from facegan_tf.training.gan_metrics import make_image_metrics

    if FLAGS.demo and not FLAGS.resume and not FLAGS["save_dir"].present:
        from facegan_tf.training.dcgan import KIND

        common.restart_demo(config.save_dir, KIND, [config.save_dir], FLAGS.demo_dir, "--resume")
    check_new_run(config.save_dir, FLAGS.resume)
    faces = load_training_faces(config)
    print(f"training images: {len(faces.images)} from {faces.source}")
    trainer = DCGANTrainer(config)
    if FLAGS.resume:
        restored = trainer.restore()
        print(
            f"resumed {restored} at step {int(trainer.step.numpy())}, "
            f"epoch {int(trainer.epoch.numpy())}"
        )
    metrics, note = None, "FID/KID off (--nofid)"
    if FLAGS.fid:
        metrics, note = make_image_metrics(
            {"": faces.images}, FLAGS.fid_weights, FLAGS.fid_batch_size, cache_dir=config.save_dir
        )
    if note:
        print(f"note: {note}")
    with run_status(trainer.checkpoint, trainer.step):
        summary = trainer.fit(faces, metrics, metrics_note=note)
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    print(f"samples: {os.path.join(config.save_dir, 'samples', 'index.html')}")
    print(f"learning curve: {os.path.join(config.save_dir, 'learning_curve.png')}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
