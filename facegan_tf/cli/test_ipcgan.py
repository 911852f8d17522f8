"""Age the faces of a folder with a trained IPCGAN generator (the original's ``test.py``).

Examples:
    python tools/test_ipcgan.py --source=./images/test
    python tools/test_ipcgan.py --source=./images/test \\
        --checkpoint_dir=./checkpoints/0_conv5_lsgan_transfer_g75_0.5f-4_a30 --mode=clean
    python tools/test_ipcgan.py --demo

For every input ``<name>`` it writes ``<save_dir>/<name>`` (the 128 x 128 input) and
``<save_dir>/<name>_<j>.jpg`` for j in --target_groups (default 1..4, as the original).
``--checkpoint_dir`` may be a folder of ours or the original's folder with
``acgan.model-N``. Faithful mode (default) batches each image with --batch_size - 1 faces of
--train_dir and uses batch statistics, as the original; clean mode runs one image at a time
with the stored moving statistics.
"""

from __future__ import annotations

import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_float("learning_rate", 0.001, "Accepted for compatibility; unused.")
flags.DEFINE_integer("batch_size", 32, "Faithful mode: 1 test image + batch_size - 1 padding "
                     "faces (the original: 32).", lower_bound=1)
flags.DEFINE_integer("image_size", 128, "Side of the generator input and output.", lower_bound=8)
flags.DEFINE_integer("noise_dim", 256, "Accepted for compatibility; unused.")
flags.DEFINE_integer("feature_size", 128, "Accepted for compatibility; unused.")
flags.DEFINE_integer("age_groups", 5, "Accepted for compatibility; read from the checkpoint.")
flags.DEFINE_integer("model_index", None, "Accepted for compatibility; unused.")
flags.DEFINE_float("gan_loss_weight", None, "Accepted for compatibility; unused.")
flags.DEFINE_float("fea_loss_weight", None, "Accepted for compatibility; unused.")
flags.DEFINE_float("age_loss_weight", None, "Accepted for compatibility; unused.")
flags.DEFINE_float("tv_loss_weight", None, "Accepted for compatibility; unused.")
flags.DEFINE_string("checkpoint_dir", "./checkpoints/0_conv5_lsgan_transfer_g75_0.5f-4_a30/",
                    "Generator checkpoint: a folder of ours or the original's acgan.model-N "
                    "folder (or prefix).")
flags.DEFINE_string("save_dir", "age/0_conv5_lsgan_transfer_g75_0.5f-4_a30/", "Output folder.")
flags.DEFINE_string("test_dir", None, "Alias of --save_dir.")
flags.DEFINE_string("test_data_dir", "./images/test/", "Folder of faces to age.")
flags.DEFINE_string("source", None, "Alias of --test_data_dir.")
flags.DEFINE_string("train_data_dir", "./images/train/", "Padding faces for faithful mode.")
flags.DEFINE_string("train_dir", None, "Alias of --train_data_dir.")
flags.DEFINE_enum("mode", "faithful", ["faithful", "clean"], "faithful: padding batch + batch "
                  "statistics (the original); clean: one image, moving statistics.")
flags.DEFINE_list("target_groups", ["1", "2", "3", "4"], "Age groups to generate (the original: "
                  "1..4 = 21-30, 31-40, 41-50, 50+).")
flags.DEFINE_bool("legacy_stretch", False, "Min-max stretch each output like the original's "
                  "scipy.misc.imsave (default: plain (x + 1) * 127.5).")
flags.DEFINE_bool("demo", False, "Age the held-out demo faces with the --demo model of "
                  "train_ipcgan (run that first).")
flags.DEFINE_string("demo_dir", "./demo_output/ipcgan", "Folder of the train_ipcgan --demo run.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    checkpoint_dir = FLAGS.checkpoint_dir
    source = common.first_set("test_data_dir", "source")
    padding_dir = common.first_set("train_data_dir", "train_dir")
    save_dir = common.first_set("save_dir", "test_dir")
    batch_size = FLAGS.batch_size
    image_size = FLAGS.image_size
    if FLAGS.demo:
        root = FLAGS.demo_dir
        if not FLAGS["checkpoint_dir"].present:
            checkpoint_dir = os.path.join(root, "checkpoint")
        if not (FLAGS["source"].present or FLAGS["test_data_dir"].present):
            source = os.path.join(root, "data", "test")
        if not (FLAGS["train_dir"].present or FLAGS["train_data_dir"].present):
            padding_dir = os.path.join(root, "data", "train")
        if not (FLAGS["test_dir"].present or FLAGS["save_dir"].present):
            save_dir = os.path.join(root, "test")
    try:
        groups = tuple(int(g) for g in FLAGS.target_groups)
    except ValueError:
        raise ValueError(
            f"--target_groups must be integers. Received: target_groups={FLAGS.target_groups}"
        ) from None
    if not os.path.exists(checkpoint_dir):
        raise FileNotFoundError(
            f"--checkpoint_dir {checkpoint_dir!r} does not exist; nothing was written. Train a "
            "model (tools/train_ipcgan.py) or give the original's checkpoint folder."
        )
    from facegan_tf.training.ipcgan_inference import (
        age_folder,
        list_folder_images,
        load_ipcgan_models,
    )

    models, info = load_ipcgan_models(checkpoint_dir, image_size)
    if FLAGS.demo or info["source"] == "facegan_tf":
        from facegan_tf.training.checkpointing import read_run_info

        run_info = read_run_info(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
        if run_info and not FLAGS["image_size"].present:
            image_size = run_info["config"].get("image_size", image_size)
        if run_info and FLAGS.demo and not FLAGS["batch_size"].present:
            batch_size = run_info["config"].get("batch_size", batch_size)
    test_paths = list_folder_images(source, "--source folder")
    padding = []
    if FLAGS.mode == "faithful":
        padding = list_folder_images(padding_dir, "--train_dir (padding faces)")
    result = age_folder(
        models["generator"], test_paths, save_dir, mode=FLAGS.mode, padding_paths=padding,
        batch_size=batch_size, target_groups=groups, image_size=image_size,
        legacy_stretch=FLAGS.legacy_stretch,
    )
    print(f"checkpoint: {info['checkpoint']} ({info['source']})")
    print(f"wrote {len(result['written'])} files to {save_dir}; index: {result['index']}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
