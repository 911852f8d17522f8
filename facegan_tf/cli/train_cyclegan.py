"""Train (or, with --phase=test, apply) a CycleGAN; flags keep xhujoy's ``main.py`` names.

Examples:
    python tools/train_cyclegan.py --demo
    python tools/train_cyclegan.py --data_dir=./datasets/utkface_aging --epochs=200
    python tools/train_cyclegan.py --data_dir=... --continue_train
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "dataset_dir",
    "horse2zebra",
    "Data folder with trainA/ trainB/ testA/ testB/. A bare name that is not a "
    "folder resolves to ./datasets/<name> like the original.",
)
flags.DEFINE_string("data_dir", None, "Alias of --dataset_dir.")
flags.DEFINE_integer("epoch", 200, "Number of training epochs.", lower_bound=1)
flags.DEFINE_integer("epochs", None, "Alias of --epoch.", lower_bound=1)
flags.DEFINE_integer(
    "epoch_step", 100, "Epoch from which the learning rate decays linearly.", lower_bound=0
)
flags.DEFINE_integer("batch_size", 1, "Images per batch (per replica).", lower_bound=1)
flags.DEFINE_integer(
    "train_size", None, "Cap on image pairs per epoch (default: no cap).", lower_bound=1
)
flags.DEFINE_integer(
    "load_size", 286, "Images are resized to this size, then cropped.", lower_bound=1
)
flags.DEFINE_integer(
    "fine_size", 256, "Crop size (training) and resize size (test).", lower_bound=1
)
flags.DEFINE_integer(
    "ngf", 64, "Generator base width (filters of the first conv layer).", lower_bound=1
)
flags.DEFINE_integer("ndf", 64, "Discriminator base width.", lower_bound=1)
flags.DEFINE_integer("num_blocks", 9, "Residual blocks of the ResNet generator.", lower_bound=0)
flags.DEFINE_integer("input_nc", 3, "Channels of domain A images (1 or 3).")
flags.DEFINE_integer("output_nc", 3, "Channels of domain B images (1 or 3).")
flags.DEFINE_float("lr", 0.0002, "Initial Adam learning rate.")
flags.DEFINE_float("beta1", 0.5, "Adam beta1 (beta2 0.999 and epsilon 1e-8 as TF1).")
flags.DEFINE_enum(
    "which_direction",
    "AtoB",
    ["AtoB", "BtoA"],
    "Direction translated by --phase=test: AtoB applies the A->B generator, BtoA the B->A one.",
)
flags.DEFINE_enum("phase", "train", ["train", "test"], "train, or test (translate test images).")
flags.DEFINE_integer(
    "save_freq", 1000, "Save a checkpoint every this many steps (and at the end).", lower_bound=1
)
flags.DEFINE_integer(
    "print_freq",
    100,
    "Write sample images every this many steps (the original's name for the sampling frequency).",
    lower_bound=1,
)
flags.DEFINE_integer("sample_freq", None, "Alias of --print_freq.", lower_bound=1)
flags.DEFINE_integer(
    "log_freq", 10, "Write losses to TensorBoard/JSONL every this many steps.", lower_bound=1
)
flags.DEFINE_bool(
    "continue_train",
    False,
    "Resume from the latest checkpoint in --checkpoint_dir "
    "(models, optimizer state, step, epoch, image pool).",
)
flags.DEFINE_string("checkpoint_dir", "./checkpoint", "Checkpoint folder of the run.")
flags.DEFINE_string("sample_dir", "./sample", "Folder for sample grids and their index.html.")
flags.DEFINE_string("test_dir", "./test", "Folder for --phase=test outputs.")
flags.DEFINE_string(
    "log_dir", "./logs", "Folder for TensorBoard events and stats.jsonl.", allow_override=True
)
flags.DEFINE_float("L1_lambda", 10.0, "Weight of the cycle-consistency L1 terms.")
flags.DEFINE_float(
    "identity_lambda",
    0.0,
    "Identity loss weight relative to L1_lambda "
    "(0 = off, as the original; 0.5 is the PyTorch CycleGAN value).",
)
flags.DEFINE_bool("use_resnet", True, "ResNet generator (true) or U-Net generator (false).")
flags.DEFINE_bool("use_lsgan", True, "Least-squares GAN loss (true) or sigmoid cross-entropy.")
flags.DEFINE_integer("max_size", 50, "Image pool size; 0 disables the pool.", lower_bound=0)
flags.DEFINE_integer("max_steps", None, "Stop after this many steps in total.", lower_bound=1)
flags.DEFINE_integer("seed", 19, "Seed of every random draw (data order, crops, pool, init).")
flags.DEFINE_bool(
    "legacy_bytescale",
    False,
    "Min-max stretch every image on load and save like "
    "the original's scipy.misc I/O (needed to reproduce its exact pixels).",
)
flags.DEFINE_bool("legacy_crop", False, "Crop offsets 1..load-fine as the original (never 0).")
flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "default: one device; mirrored: MirroredStrategy over all visible GPUs (or the "
    "configured logical CPUs); multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG. "
    "--batch_size is per replica.",
)
flags.DEFINE_bool(
    "xla", False, "Compile the per-replica forward/backward passes with XLA (jit_compile)."
)
flags.DEFINE_bool(
    "mixed_precision",
    False,
    "Compute in float16 with float32 variables and losses; dynamic loss scaling for both "
    "optimizers (steps with non-finite scaled gradients are skipped).",
)
flags.DEFINE_bool(
    "demo",
    False,
    "Train a small male<->female CycleGAN on the embedded LFW faces "
    "(scikit-image) and translate its test faces; flags given explicitly still win.",
)
flags.DEFINE_string("demo_dir", "./demo_output/cyclegan", "Where --demo writes data and results.")

#: --demo preset: small enough for a 2-core CPU in a few minutes (faces are 25 x 25 px).
DEMO_PRESET = {
    "epoch": 80,
    "epoch_step": 40,
    "input_nc": 1,
    "output_nc": 1,
    "load_size": 36,
    "fine_size": 32,
    "ngf": 32,
    "ndf": 32,
    "num_blocks": 4,
    "use_lsgan": False,
    "identity_lambda": 0.5,
    "save_freq": 500,
    "print_freq": 250,
}


def aliased(canonical: str, alias: str, preset: dict):
    """An alias group's value: the flag given, else the --demo preset, else the original's
    default (of ``canonical``)."""
    if FLAGS[alias].present or FLAGS[canonical].present:
        return common.first_set(canonical, alias)
    return preset.get(canonical, FLAGS[canonical].value)


def resolve_config():
    """Flags -> `CycleGANConfig` (applying aliases and the --demo preset)."""
    from facegan_tf.training.cyclegan import CycleGANConfig

    preset = dict(DEMO_PRESET) if FLAGS.demo else {}
    if FLAGS.demo:
        root = FLAGS.demo_dir
        preset.update(
            {
                "dataset_dir": os.path.join(root, "data"),
                "checkpoint_dir": os.path.join(root, "checkpoint"),
                "sample_dir": os.path.join(root, "sample"),
                "test_dir": os.path.join(root, "test"),
                "log_dir": os.path.join(root, "logs"),
            }
        )
    dataset_dir = aliased("dataset_dir", "data_dir", preset=preset)
    epochs = aliased("epoch", "epochs", preset=preset)
    sample_freq = aliased("print_freq", "sample_freq", preset=preset)
    return CycleGANConfig(
        dataset_dir=dataset_dir,
        epochs=epochs,
        epoch_step=min(common.flag_or_preset("epoch_step", preset), epochs),
        batch_size=FLAGS.batch_size,
        train_size=FLAGS.train_size,
        load_size=common.flag_or_preset("load_size", preset),
        fine_size=common.flag_or_preset("fine_size", preset),
        ngf=common.flag_or_preset("ngf", preset),
        ndf=common.flag_or_preset("ndf", preset),
        num_blocks=common.flag_or_preset("num_blocks", preset),
        input_nc=common.flag_or_preset("input_nc", preset),
        output_nc=common.flag_or_preset("output_nc", preset),
        lr=FLAGS.lr,
        beta1=FLAGS.beta1,
        l1_lambda=FLAGS.L1_lambda,
        identity_lambda=common.flag_or_preset("identity_lambda", preset),
        use_resnet=FLAGS.use_resnet,
        use_lsgan=common.flag_or_preset("use_lsgan", preset),
        max_size=FLAGS.max_size,
        save_freq=common.flag_or_preset("save_freq", preset),
        sample_freq=sample_freq,
        log_freq=FLAGS.log_freq,
        max_steps=FLAGS.max_steps,
        seed=FLAGS.seed,
        checkpoint_dir=common.flag_or_preset("checkpoint_dir", preset),
        sample_dir=common.flag_or_preset("sample_dir", preset),
        log_dir=common.flag_or_preset("log_dir", preset),
        legacy_bytescale=FLAGS.legacy_bytescale,
        legacy_crop=FLAGS.legacy_crop,
        strategy=FLAGS.strategy,
        xla=FLAGS.xla,
        mixed_precision=FLAGS.mixed_precision,
    ), common.flag_or_preset("test_dir", preset)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    config, test_dir = resolve_config()
    if FLAGS.demo:
        from facegan_tf.data.demo import write_lfw_cyclegan_folders

        if not os.path.isdir(os.path.join(config.dataset_dir, "trainA")):
            counts = write_lfw_cyclegan_folders(config.dataset_dir)
            print(f"demo data (LFW faces, male=A, female=B, noisy pseudo-labels): {counts}")
    if FLAGS.phase == "test":
        from facegan_tf.training.cyclegan_inference import translate

        translate(
            config.checkpoint_dir,
            None,
            config.dataset_dir,
            FLAGS.which_direction,
            test_dir,
            config.fine_size if FLAGS["fine_size"].present or FLAGS.demo else None,
            config.legacy_bytescale,
            "keep",
        )
        return 0
    from facegan_tf.training.checkpointing import read_run_info, run_status
    from facegan_tf.training.cyclegan import KIND, CycleGANTrainer

    if FLAGS.demo and not FLAGS.continue_train and not FLAGS["checkpoint_dir"].present:
        common.restart_demo(
            config.checkpoint_dir,
            KIND,
            [
                folder
                for name, folder in (
                    ("checkpoint_dir", config.checkpoint_dir),
                    ("sample_dir", config.sample_dir),
                    ("test_dir", test_dir),
                    ("log_dir", config.log_dir),
                )
                if not FLAGS[name].present
            ],
            FLAGS.demo_dir,
            "--continue_train",
        )

    if not FLAGS.continue_train and read_run_info(config.checkpoint_dir) is not None:
        raise ValueError(
            f"--checkpoint_dir {config.checkpoint_dir!r} already holds a run. Pass "
            "--continue_train to resume it, or choose another --checkpoint_dir (nothing was "
            "overwritten)."
        )
    from facegan_tf.data.unpaired import scan_unpaired_folders

    folders = scan_unpaired_folders(config.dataset_dir)  # refuse a bad folder before any write
    trainer = CycleGANTrainer(config)
    if FLAGS.continue_train:
        restored = trainer.restore()
        print(
            f"resumed {restored} at step {int(trainer.step.numpy())}, "
            f"epoch {int(trainer.epoch.numpy())}"
        )
    with run_status(trainer.checkpoint, trainer.step):
        summary = trainer.fit(folders)
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}))
    if FLAGS.demo:
        from facegan_tf.training.cyclegan_inference import translate

        for direction in ("AtoB", "BtoA"):
            result = translate(
                config.checkpoint_dir,
                None,
                config.dataset_dir,
                direction,
                test_dir,
                config.fine_size,
                False,
                "png",
            )
        print(f"samples: {os.path.join(config.sample_dir, 'index.html')}")
        print(f"test results: {result['index']}")
        print(f"checkpoint: {summary['checkpoint']}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
