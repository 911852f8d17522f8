"""Sample from a trained DCGAN: random grid, latent interpolation strip, optional FID/KID.

Accepts a run folder of tools/train_dcgan.py, a folder written by
``tools/convert_tf1_checkpoint.py --kind=dcgan_sualab``, or a sualab TF1 checkpoint folder or
``model_N.ckpt`` prefix (detected in that order). Outputs (sualab ``test.py`` names, PNG):
``sample_image_random.png``, ``sample_image_interpolate.png``, ``metrics.json``, ``index.html``.

Examples:
    python tools/test_dcgan.py            # the run of a plain `python tools/train_dcgan.py`
    python tools/test_dcgan.py --checkpoint_dir=runs/dcgan --test_dir=runs/dcgan/test \\
        --real_dir=data/FFHQ/thumbnails128x128
    python tools/test_dcgan.py --checkpoint_dir=DCGAN_training_FFHQ_z_100_96crop_01
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "checkpoint_dir",
    "./DCGAN_training_FFHQ_z_100_96crop",
    "Run folder of train_dcgan (default: its default --save_dir), converted folder, or "
    "sualab TF1 checkpoint folder/prefix.",
)
flags.DEFINE_string(
    "test_dir", "./test_dcgan", "Output folder (PNG files, metrics.json, index.html)."
)
flags.DEFINE_bool(
    "use_best", True, "Run folders: use the best-by-FID checkpoint (best/) when there is one."
)
flags.DEFINE_integer("sample_H", 20, "Rows of the random sample grid (sualab 20).", lower_bound=1)
flags.DEFINE_integer(
    "sample_W", 16, "Columns of the random sample grid (sualab 16).", lower_bound=1
)
flags.DEFINE_integer(
    "num_intermediate",
    9,
    "Interpolation points between z_a and z_b (sualab W = 9).",
    lower_bound=0,
)
flags.DEFINE_string(
    "real_dir", None, "Folder of real images; when given, FID/KID of the generator against it."
)
flags.DEFINE_integer(
    "crop_size",
    -1,
    "Centre crop of the real images before resizing (-1: as the run was trained; sualab 96; "
    "0: none).",
    lower_bound=-1,
)
flags.DEFINE_integer(
    "eval_sample_size", 10000, "Generated images for FID/KID (sualab 10,000).", lower_bound=2
)
flags.DEFINE_integer("batch_size_eval", 50, "Batch size when generating.", lower_bound=1)
flags.DEFINE_string("fid_weights", "", "FID Inception weights file (default location if empty).")
flags.DEFINE_integer("fid_batch_size", 16, "Images per FID feature batch.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the z draws.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    path = FLAGS.checkpoint_dir
    if not os.path.exists(path) and not os.path.isfile(path + ".index"):
        raise FileNotFoundError(
            f"No DCGAN checkpoint at --checkpoint_dir {path!r}: the path does not exist (nor "
            f"{path + '.index'!r}). Received: checkpoint_dir={path!r}"
        )
    common.quiet_tensorflow()
    from facegan_tf.training.dcgan_inference import (
        load_dcgan_generator,
        load_real_images,
        sample_dcgan,
    )

    generator, info = load_dcgan_generator(path, use_best=FLAGS.use_best)
    metric, note = None, ""
    if FLAGS.real_dir:
        from facegan_tf.training.gan_metrics import make_image_metrics

        crop_size = info["crop_size"] if FLAGS.crop_size < 0 else FLAGS.crop_size
        real = load_real_images(FLAGS.real_dir, crop_size, info["image_size"])
        metrics, note = make_image_metrics({"": real}, FLAGS.fid_weights, FLAGS.fid_batch_size)
        if metrics is None:
            raise FileNotFoundError(f"--real_dir asks for FID/KID, but {note}")
        metric = metrics[""]
    record = sample_dcgan(
        generator,
        info,
        FLAGS.test_dir,
        sample_H=FLAGS.sample_H,
        sample_W=FLAGS.sample_W,
        num_intermediate=FLAGS.num_intermediate,
        eval_sample_size=FLAGS.eval_sample_size,
        batch_size_eval=FLAGS.batch_size_eval,
        seed=FLAGS.seed,
        metric=metric,
        metrics_note=note,
    )
    print(json.dumps(record, default=str))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
