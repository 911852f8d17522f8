"""Train a conditional face GAN on class folders (one sub-folder per class).

Examples:
    python tools/train_cgan.py --demo --model=cdcgan
    python tools/train_cgan.py --model=cwgan_gp --data_dir=Face-Mask-Classification/train
"""

from __future__ import annotations

import json
import os

from absl import flags
from absl import logging as absl_logging

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_enum(
    "model",
    "cdcgan",
    ["cgan", "cdcgan", "cwgan_gp", "acgan"],
    "cgan (MLP), conditional DCGAN, conditional WGAN-GP, AC-GAN.",
)
flags.DEFINE_string(
    "data_dir",
    None,
    "Folder with one sub-folder of images per class "
    "(labels in name order, e.g. with_mask=0, without_mask=1).",
)
flags.DEFINE_string("save_dir", "./cgan_run", "Run folder (checkpoints, best/, samples/, logs/).")
flags.DEFINE_integer("image_size", 64, "Training resolution (power of two >= 8).", lower_bound=8)
flags.DEFINE_integer(
    "crop_size", 0, "Centre crop before resizing (0: none, the mask project).", lower_bound=0
)
flags.DEFINE_integer("batch_size", 64, "Images per batch per replica.", lower_bound=1)
flags.DEFINE_integer("num_epochs", 100, "Training epochs.", lower_bound=1)
flags.DEFINE_float(
    "init_learning_rate",
    1e-4,
    "Adam learning rate (the mask project: 1e-4; its MLP cGAN used 2e-4).",
)
flags.DEFINE_float("beta1", 0.5, "Adam beta1.")
flags.DEFINE_float("beta2", 0.999, "Adam beta2.")
flags.DEFINE_float("eps", 1e-8, "Adam epsilon.")
flags.DEFINE_integer("z_dim", 100, "Latent size.", lower_bound=1)
flags.DEFINE_enum(
    "z_distribution", "normal", ["uniform", "normal"], "z ~ N(0, 1) (mask project) or U(-1, 1)."
)
flags.DEFINE_enum(
    "loss",
    "",
    ["", "lsgan", "bce"],
    "Adversarial loss of cgan/cdcgan (default: lsgan for cgan, bce for cdcgan).",
)
flags.DEFINE_integer(
    "G_FC_layer_channel", 512, "DCGAN G: channels of the 4x4 dense output.", lower_bound=1
)
flags.DEFINE_integer("G_channel", 64, "DCGAN G base width.", lower_bound=1)
flags.DEFINE_integer("D_channel", 64, "DCGAN D / critic base width.", lower_bound=1)
flags.DEFINE_list("mlp_g_units", ["128", "256", "512", "1024", "2048"], "cgan G hidden widths.")
flags.DEFINE_list("mlp_d_units", ["512", "512", "512", "512"], "cgan D hidden widths.")
flags.DEFINE_float("mlp_dropout", 0.4, "cgan D dropout.")
flags.DEFINE_integer(
    "mlp_label_units",
    128,
    "cgan: width of the label's own hidden layer in G and D (Mirza & Osindero); 0: the mask "
    "project's Embedding(K, K) appended to the inputs.",
    lower_bound=0,
)
flags.DEFINE_float(
    "bn_epsilon",
    1e-5,
    "Batch-norm epsilon of the generators (the mask project's "
    "BatchNorm(n, 0.8) slip means 0.8 there).",
)
flags.DEFINE_integer("n_critic", 5, "cwgan_gp: critic updates per generator update.", lower_bound=1)
flags.DEFINE_float("gp_lambda", 10.0, "cwgan_gp: gradient-penalty weight.")
flags.DEFINE_integer(
    "eval_sample_size", 1000, "Generated images per class per FID evaluation.", lower_bound=2
)
flags.DEFINE_integer("batch_size_eval", 50, "Batch size when generating.", lower_bound=1)
flags.DEFINE_integer(
    "eval_every_epochs", 1, "Evaluate FID/KID every this many epochs.", lower_bound=1
)
flags.DEFINE_float(
    "score_threshold", 1e-4, "Relative FID improvement that keeps a best checkpoint."
)
flags.DEFINE_integer("sample_H", 8, "Rows of each per-class sample grid.", lower_bound=1)
flags.DEFINE_integer("sample_W", 8, "Columns of each per-class sample grid.", lower_bound=1)
flags.DEFINE_integer("log_every_steps", 10, "Write losses every this many steps.", lower_bound=1)
flags.DEFINE_integer("max_steps", 0, "Stop after this many steps (0: no limit).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of every random draw.")
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
flags.DEFINE_bool("resume", False, "Continue the run in --save_dir.")
flags.DEFINE_alias("continue_train", "resume")
flags.DEFINE_bool("fid", True, "Compute FID/KID at evaluations (--nofid: skip them).")
flags.DEFINE_string("fid_weights", "", "FID Inception weights file (default location if empty).")
flags.DEFINE_integer("fid_batch_size", 16, "Images per FID feature batch.", lower_bound=1)
flags.DEFINE_bool(
    "demo",
    False,
    "Train on the embedded LFW faces split male/female by noisy "
    "pseudo-labels, at 32x32 with tiny widths; explicit flags still win.",
)
flags.DEFINE_string("demo_dir", "./demo_output/cgan", "Run folder of --demo (data in <dir>/data).")

DEMO_PRESET = {
    "image_size": 32,
    "batch_size": 20,
    "num_epochs": 60,
    "init_learning_rate": 2e-4,
    "G_FC_layer_channel": 64,
    "G_channel": 16,
    "D_channel": 16,
    "mlp_g_units": ["128", "256", "512"],
    "mlp_d_units": ["256", "256"],
    "eval_sample_size": 100,
    "eval_every_epochs": 60,
    "log_every_steps": 5,
}


def _units(name: str, preset: dict) -> tuple[int, ...]:
    values = common.flag_or_preset(name, preset)
    try:
        return tuple(int(v) for v in values)
    except ValueError as error:
        raise ValueError(
            f"--{name} must be a comma-separated list of integers. "
            f"Received: {name}={','.join(values)}"
        ) from error


def load_training_set(data_dir: str, crop_size: int, image_size: int):
    from facegan_tf.data.faces import load_class_folders
    from facegan_tf.training.progress import ProgressBar

    bar = ProgressBar(None, label="loading images", unit="img")
    faces = load_class_folders(data_dir, crop_size, image_size, bar.update)
    bar.close()
    return faces


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    absl_logging.set_verbosity(absl_logging.WARNING)
    from facegan_tf.training.cgan import ConditionalGANConfig, ConditionalGANTrainer
    from facegan_tf.training.checkpointing import run_status
    from facegan_tf.training.gan_loop import check_new_run
    from facegan_tf.training.gan_metrics import make_image_metrics

    preset = dict(DEMO_PRESET) if FLAGS.demo else {}
    data_dir = FLAGS.data_dir
    if FLAGS.demo:
        preset["save_dir"] = os.path.join(FLAGS.demo_dir, FLAGS.model)
        if not data_dir:
            from facegan_tf.data.demo import write_lfw_gender_folders

            data_dir = os.path.join(FLAGS.demo_dir, "data")
            if not os.path.isdir(data_dir):
                counts = write_lfw_gender_folders(data_dir)
                print(f"demo data (LFW faces, noisy gender pseudo-labels): {counts}")
    if not data_dir:
        raise ValueError(
            "--data_dir is required (a folder with one sub-folder per class), or pass --demo."
        )
    image_size = common.flag_or_preset("image_size", preset)
    faces = load_training_set(data_dir, FLAGS.crop_size, image_size)
    config = ConditionalGANConfig(
        model=FLAGS.model,
        data_dir=data_dir,
        save_dir=common.flag_or_preset("save_dir", preset),
        num_classes=faces.num_classes,
        class_names=faces.class_names,
        image_size=image_size,
        crop_size=FLAGS.crop_size,
        batch_size=common.flag_or_preset("batch_size", preset),
        num_epochs=common.flag_or_preset("num_epochs", preset),
        init_learning_rate=common.flag_or_preset("init_learning_rate", preset),
        beta1=FLAGS.beta1,
        beta2=FLAGS.beta2,
        eps=FLAGS.eps,
        z_dim=FLAGS.z_dim,
        z_distribution=FLAGS.z_distribution,
        loss=FLAGS.loss,
        fc_channels=common.flag_or_preset("G_FC_layer_channel", preset),
        g_channels=common.flag_or_preset("G_channel", preset),
        d_channels=common.flag_or_preset("D_channel", preset),
        mlp_g_units=_units("mlp_g_units", preset),
        mlp_d_units=_units("mlp_d_units", preset),
        mlp_dropout=FLAGS.mlp_dropout,
        mlp_label_units=FLAGS.mlp_label_units,
        bn_epsilon=FLAGS.bn_epsilon,
        n_critic=FLAGS.n_critic,
        gp_lambda=FLAGS.gp_lambda,
        eval_sample_size=common.flag_or_preset("eval_sample_size", preset),
        batch_size_eval=FLAGS.batch_size_eval,
        eval_every_epochs=common.flag_or_preset("eval_every_epochs", preset),
        score_threshold=FLAGS.score_threshold,
        sample_H=FLAGS.sample_H,
        sample_W=FLAGS.sample_W,
        log_every_steps=common.flag_or_preset("log_every_steps", preset),
        max_steps=FLAGS.max_steps,
        seed=FLAGS.seed,
        strategy=FLAGS.strategy,
        sync_batch_norm=FLAGS.sync_batch_norm,
        mixed_precision=FLAGS.mixed_precision,
        xla=FLAGS.xla,
    )
    if FLAGS.demo and not FLAGS.resume and not FLAGS["save_dir"].present:
        from facegan_tf.training.cgan import KIND

        common.restart_demo(config.save_dir, KIND, [config.save_dir], FLAGS.demo_dir, "--resume")
    check_new_run(config.save_dir, FLAGS.resume)
    counts = {name: int((faces.labels == i).sum()) for i, name in enumerate(faces.class_names)}
    print(f"classes: {counts}")
    trainer = ConditionalGANTrainer(config)
    if FLAGS.resume:
        print(f"resumed {trainer.restore()} at step {int(trainer.step.numpy())}")
    real_sets = {name: faces.class_images(i) for i, name in enumerate(faces.class_names)}
    metrics, note = None, "FID/KID off (--nofid)"
    if FLAGS.fid:
        metrics, note = make_image_metrics(
            real_sets, FLAGS.fid_weights, FLAGS.fid_batch_size, cache_dir=config.save_dir
        )
    if note:
        print(f"note: {note}")
    with run_status(trainer.checkpoint, trainer.step):
        summary = trainer.fit(faces, metrics, metrics_note=note)
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    print(f"samples: {os.path.join(config.save_dir, 'samples', 'index.html')}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
