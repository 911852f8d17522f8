"""Train IPCGAN (Wang et al., CVPR 2018); flags keep the original ``age_lsgan_transfer.py`` names.

Examples:
    python tools/train_ipcgan.py --demo
    python tools/train_ipcgan.py --list_dir=./data/cacd_lists --root_folder=./CACD_cropped_400 \\
        --alexnet_pretrained_model=./checkpoints/pre_trained/alexnet/alexnet.model-292000 \\
        --age_pretrained_model=./checkpoints/pre_trained/age_classifier/age_classifier.model-300000

A ``--checkpoint_dir`` that already holds an IPCGAN run is resumed (models, optimisers, step),
like the original, which restored its latest checkpoint at start. A folder converted from the
original's ``acgan.model-N`` (``convert_tf1_checkpoint --kind=ipcgan``) is resumed too: G and D
with their batch-norm state; step 0 and fresh Adams, as the original's own restart.
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_float("learning_rate", 0.001, "Adam learning rate of G and D.")
flags.DEFINE_integer("batch_size", 32, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("image_size", 128, "Side of real, source and generated images.", lower_bound=8)
flags.DEFINE_integer("noise_dim", 256, "Accepted for compatibility; unused (as the original).")
flags.DEFINE_integer("feature_size", 128, "Accepted for compatibility; unused (as the original).")
flags.DEFINE_integer(
    "age_groups", 5, "Number of age groups (channels of the condition maps).", lower_bound=2
)
flags.DEFINE_integer("max_steps", 200000, "Total training steps.", lower_bound=1)
flags.DEFINE_string(
    "alexnet_pretrained_model",
    "pre_trained/alexnet.model-292000",
    "Identity AlexNet: a TF1 checkpoint prefix or folder of the original, or a "
    "folder of ours (convert_tf1_checkpoint or train_age_classifier). Empty: "
    "random frozen AlexNet (smoke tests only).",
)
flags.DEFINE_string(
    "age_pretrained_model",
    "pre_trained/age_classifier.model-300000",
    "Age classifier head: as --alexnet_pretrained_model.",
)
flags.DEFINE_integer("model_index", None, "Accepted for compatibility; unused.")
flags.DEFINE_float("gan_loss_weight", 75.0, "Weight of the LSGAN losses (released run: 75).")
flags.DEFINE_float("fea_loss_weight", 0.5e-4, "Weight of the identity feature loss (0.5e-4).")
flags.DEFINE_float("age_loss_weight", 30.0, "Weight of the age classification loss (30).")
flags.DEFINE_float(
    "tv_loss_weight",
    None,
    "Accepted for compatibility; unused (the original's total-variation loss is disabled).",
)
flags.DEFINE_string(
    "checkpoint_dir",
    "./checkpoints/age/0_conv5_lsgan_transfer_g75_0.5f-4_a30",
    "Checkpoint folder (resumed when it already holds an IPCGAN run).",
)
flags.DEFINE_string(
    "source_checkpoint_dir",
    None,
    "Initialise G and D from this IPCGAN "
    "checkpoint (ours or the original's acgan.model-N), the original's "
    "'transfer' from an earlier run.",
)
flags.DEFINE_string(
    "sample_dir",
    "age/0_conv5_lsgan_transfer_g75_0.5f-4_a30",
    "Folder of sample grids (<step>/source.png, test_<j>.png, index.html).",
)
flags.DEFINE_enum(
    "fea_layer_name",
    "conv5",
    ["conv3", "conv4", "conv5", "pool5", "fc6", "fc7"],
    "AlexNet layer of the identity feature loss.",
)
flags.DEFINE_string(
    "source_file", None, "Source list (lines '<name> <label>'); default <list_dir>/source.txt."
)
flags.DEFINE_string(
    "root_folder", "CACD_cropped_400/", "Image root that list names are relative to."
)
flags.DEFINE_string(
    "list_dir",
    "./data/ipcgan_lists",
    "Folder with train_age_group_<k>.txt (and source.txt, train_label_pair.txt).",
)
flags.DEFINE_string(
    "label_pair_file",
    None,
    "train_label_pair.txt ('<true> <false>' lines); "
    "default <list_dir>/train_label_pair.txt if present, else generated.",
)
flags.DEFINE_string(
    "summary_dir", None, "TensorBoard/JSONL folder (default <checkpoint_dir>/logs)."
)
flags.DEFINE_integer(
    "val_interval", 5000, "Write sample grids every this many steps.", lower_bound=1
)
flags.DEFINE_integer(
    "save_interval", 10000, "Save a checkpoint every this many steps.", lower_bound=1
)
flags.DEFINE_integer("log_freq", 10, "Write losses every this many steps.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of data order and label pairs.")
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "default: one device; mirrored: MirroredStrategy over all visible GPUs (or the "
    "configured logical CPUs); multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG. "
    "--batch_size is global and must divide by the number of replicas.",
)
flags.DEFINE_bool(
    "mixed_precision",
    False,
    "Compute in float16 with float32 variables and losses; dynamic loss scaling for every "
    "optimizer (steps with non-finite scaled gradients are skipped).",
)
flags.DEFINE_bool(
    "xla", False, "Compile the per-replica forward/backward passes with XLA (jit_compile)."
)
flags.DEFINE_bool(
    "synchronized_bn",
    False,
    "Batch statistics over the global batch across replicas (the original: one device, batch 32).",
)
flags.DEFINE_bool(
    "bn_zero_debias",
    True,
    "Batch-norm moving averages as TF1's zero-debiased EMA (the original); false: plain EMA.",
)
flags.DEFINE_bool(
    "mirror_d_statistics",
    True,
    "The G update also runs D on the real batch with both conditions, for D's batch-norm "
    "statistics only (the original: 6 updates of D's averages per step); false: 4.",
)
flags.DEFINE_integer(
    "g_base_filters", 32, "Generator width (the original has no flag: 32).", lower_bound=1
)
flags.DEFINE_integer("num_blocks", 6, "Generator residual units (6).", lower_bound=0)
flags.DEFINE_integer("d_base_filters", 64, "Discriminator width (64).", lower_bound=1)
flags.DEFINE_integer(
    "d_output_channels", 512, "Channels of the discriminator logits (512).", lower_bound=1
)
flags.DEFINE_list(
    "alexnet_conv_filters",
    ["96", "256", "384", "384", "256"],
    "Widths of a randomly initialised AlexNet (ignored with pretrained models).",
)
flags.DEFINE_integer("alexnet_fc_units", 4096, "fc6/fc7 width of a random AlexNet.", lower_bound=1)
flags.DEFINE_integer("alexnet_input_size", 227, "AlexNet input side (227).", lower_bound=67)
flags.DEFINE_bool(
    "demo",
    False,
    "Smoke demo: tiny IPCGAN on the embedded LFW faces with PSEUDO "
    "age groups (no real ages), then test_ipcgan on held-out faces. Explicit flags "
    "still win.",
)
flags.DEFINE_string("demo_dir", "./demo_output/ipcgan", "Where --demo writes data and results.")

#: --demo preset: minutes on a 2-core CPU (faces are 25 x 25 px, upsampled to 32).
DEMO_PRESET = {
    "batch_size": 8,
    "image_size": 32,
    "max_steps": 300,
    "g_base_filters": 16,
    "num_blocks": 3,
    "d_base_filters": 16,
    "d_output_channels": 32,
    "alexnet_conv_filters": ["16", "32", "32", "32", "32"],
    "alexnet_fc_units": 64,
    "alexnet_input_size": 67,
    "alexnet_pretrained_model": "",
    "age_pretrained_model": "",
    "val_interval": 100,
    "save_interval": 100,
}


def resolve_config():
    """Flags -> `IPCGANConfig` (with the --demo preset)."""
    from facegan_tf.training.ipcgan import IPCGANConfig

    preset = dict(DEMO_PRESET) if FLAGS.demo else {}
    if FLAGS.demo:
        root = FLAGS.demo_dir
        preset.update(
            {
                "list_dir": os.path.join(root, "data", "lists"),
                "root_folder": os.path.join(root, "data", "images"),
                "checkpoint_dir": os.path.join(root, "checkpoint"),
                "sample_dir": os.path.join(root, "sample"),
            }
        )
    try:
        conv_filters = tuple(int(v) for v in common.flag_or_preset("alexnet_conv_filters", preset))
    except ValueError:
        raise ValueError(
            "--alexnet_conv_filters must be five integers. Received: "
            f"alexnet_conv_filters={FLAGS.alexnet_conv_filters}"
        ) from None
    return IPCGANConfig(
        list_dir=common.flag_or_preset("list_dir", preset),
        image_root=common.flag_or_preset("root_folder", preset),
        source_file=FLAGS.source_file,
        label_pair_file=FLAGS.label_pair_file,
        learning_rate=FLAGS.learning_rate,
        batch_size=common.flag_or_preset("batch_size", preset),
        image_size=common.flag_or_preset("image_size", preset),
        age_groups=FLAGS.age_groups,
        max_steps=common.flag_or_preset("max_steps", preset),
        gan_loss_weight=FLAGS.gan_loss_weight,
        fea_loss_weight=FLAGS.fea_loss_weight,
        age_loss_weight=FLAGS.age_loss_weight,
        fea_layer_name=FLAGS.fea_layer_name,
        checkpoint_dir=common.flag_or_preset("checkpoint_dir", preset),
        sample_dir=common.flag_or_preset("sample_dir", preset),
        log_dir=FLAGS.summary_dir,
        alexnet_pretrained_model=common.flag_or_preset("alexnet_pretrained_model", preset),
        age_pretrained_model=common.flag_or_preset("age_pretrained_model", preset),
        source_checkpoint_dir=FLAGS.source_checkpoint_dir,
        g_base_filters=common.flag_or_preset("g_base_filters", preset),
        num_blocks=common.flag_or_preset("num_blocks", preset),
        d_base_filters=common.flag_or_preset("d_base_filters", preset),
        d_output_channels=common.flag_or_preset("d_output_channels", preset),
        alexnet_conv_filters=conv_filters,
        alexnet_fc_units=common.flag_or_preset("alexnet_fc_units", preset),
        alexnet_input_size=common.flag_or_preset("alexnet_input_size", preset),
        val_interval=common.flag_or_preset("val_interval", preset),
        save_interval=common.flag_or_preset("save_interval", preset),
        log_freq=FLAGS.log_freq,
        seed=FLAGS.seed,
        strategy=FLAGS.strategy,
        synchronized_bn=FLAGS.synchronized_bn,
        mixed_precision=FLAGS.mixed_precision,
        xla=FLAGS.xla,
        bn_zero_debias=FLAGS.bn_zero_debias,
        mirror_d_statistics=FLAGS.mirror_d_statistics,
    )


def _check_pretrained(path: str, flag: str) -> None:
    if not path:
        return
    if os.path.isdir(path) or os.path.isfile(path + ".index") or path.endswith(".index"):
        return
    raise FileNotFoundError(
        f"--{flag} {path!r} does not exist: give the TF1 checkpoint prefix (e.g. "
        "./checkpoints/pre_trained/alexnet/alexnet.model-292000), its folder, or a converted "
        f"folder; train one with tools/train_age_classifier.py. Received: {flag}={path!r}"
    )


def _refuse_unconverted_legacy(checkpoint_dir: str, existing: dict | None) -> None:
    """The original's own folder (``acgan.model-N`` + its ``checkpoint`` state file) is not
    trained into directly: our saves would replace its state file."""
    if existing is not None or not os.path.isdir(checkpoint_dir):
        return
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest and os.path.basename(latest).startswith("acgan.model-"):
        raise ValueError(
            f"--checkpoint_dir {checkpoint_dir!r} holds the original's TF1 checkpoint "
            f"{os.path.basename(latest)!r}. Convert it first (tools/convert_tf1_checkpoint.py "
            "--kind=ipcgan --tf1_checkpoint=DIR --output_dir=NEW) and resume with "
            "--checkpoint_dir=NEW, or start a new run from it with --source_checkpoint_dir. "
            f"Received: checkpoint_dir={checkpoint_dir!r}"
        )


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    config = resolve_config()
    _check_pretrained(config.alexnet_pretrained_model, "alexnet_pretrained_model")
    _check_pretrained(config.age_pretrained_model, "age_pretrained_model")
    if FLAGS.demo:
        from facegan_tf.data.ipcgan_lists import write_demo_data

        data_root = os.path.dirname(config.list_dir)
        if not os.path.isfile(os.path.join(config.list_dir, "source.txt")):
            counts = write_demo_data(data_root, config.age_groups)
            print(f"demo data (LFW faces with PSEUDO age groups i % {config.age_groups}): {counts}")
    from facegan_tf.training.checkpointing import read_run_info, run_status
    from facegan_tf.training.ipcgan import KIND, IPCGANTrainer

    if FLAGS.demo and not FLAGS["checkpoint_dir"].present:
        common.restart_demo(
            config.checkpoint_dir,
            KIND,
            [config.checkpoint_dir]
            + ([] if FLAGS["sample_dir"].present else [config.sample_dir])
            + [os.path.join(FLAGS.demo_dir, "test")],
            FLAGS.demo_dir,
            f"--checkpoint_dir={config.checkpoint_dir}",
        )

    existing = (
        read_run_info(config.checkpoint_dir) if os.path.isdir(config.checkpoint_dir) else None
    )
    _refuse_unconverted_legacy(config.checkpoint_dir, existing)
    trainer = IPCGANTrainer(config)
    if existing is not None:
        restored = trainer.restore()
        print(f"resumed {restored} at step {int(trainer.step.numpy())}")
    with run_status(trainer.checkpoint, trainer.step):
        summary = trainer.fit(log_lines=lambda line: print(line, flush=True))
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    if FLAGS.demo:
        from facegan_tf.training.ipcgan_inference import age_folder, list_folder_images

        data_root = os.path.dirname(config.list_dir)
        result = age_folder(
            trainer.models["generator"],
            list_folder_images(os.path.join(data_root, "test"), "demo test folder"),
            os.path.join(FLAGS.demo_dir, "test"),
            mode="faithful",
            padding_paths=list_folder_images(os.path.join(data_root, "train"), "padding"),
            batch_size=config.batch_size,
            image_size=config.image_size,
        )
        print(f"samples: {os.path.join(config.sample_dir, 'index.html')}")
        print(f"test results: {result['index']}")
        print(f"checkpoint: {summary['checkpoint']}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
