"""Export a trained or migrated generator as .keras, SavedModel, TFLite and ONNX files.

--model takes a run folder of tools/train_cyclegan.py, train_ipcgan.py, train_dcgan.py or
train_cgan.py, a folder converted by tools/convert_tf1_checkpoint.py, or a legacy TF1
checkpoint (xhujoy CycleGAN, IPCGAN, sualab DCGAN). See docs/export.md.

Examples:
    python tools/export_generator.py --model=runs/horse2zebra --output_dir=export/h2z \\
        --formats=keras,saved_model,tflite,onnx --direction=AtoB
    python tools/export_generator.py --model=runs/horse2zebra --output_dir=export/h2z_int8 \\
        --formats=tflite --int8 --image_size=256 --source=photos/
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "model", None, "Run folder of ours, converted folder, or legacy TF1 checkpoint folder/prefix."
)
flags.DEFINE_string("output_dir", None, "Folder for the exported files and export_manifest.json.")
flags.DEFINE_list(
    "formats",
    ["keras", "saved_model", "tflite"],
    "Comma-separated subset of keras,saved_model,tflite,onnx (onnx needs the onnx extra).",
)
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "CycleGAN: which generator to export.")
flags.DEFINE_bool(
    "int8", False, "Also write generator_int8.tflite (post-training int8 at --image_size)."
)
flags.DEFINE_integer(
    "image_size",
    0,
    "Training side of the model (CycleGAN fine_size, IPCGAN 128); the int8 file's fixed side. "
    "0: the run's value or the original's default.",
    lower_bound=0,
)
flags.DEFINE_string(
    "source",
    None,
    "Image, or folder of images searched recursively, for int8 calibration (default: smooth "
    "random images). Unreadable files are skipped and counted.",
)
flags.DEFINE_integer("calibration_images", 32, "Images of --source used for int8.", lower_bound=1)
flags.DEFINE_bool("overwrite", False, "Replace an earlier export in --output_dir.")
flags.DEFINE_bool("progress", True, "Show a progress bar (one step per written file).")


def _calibration(source: str, side: int, count: int, channels: int):
    """Up to ``count`` readable images of ``source`` (and its sub-folders) at ``side`` x
    ``side`` in [-1, 1]; unreadable files are skipped and counted."""
    import numpy as np

    from facegan_tf.data.align import find_photos
    from facegan_tf.data.images import ImageReadError, read_image, resize_uint8, to_signed_unit

    if not os.path.exists(source):
        raise FileNotFoundError(
            f"--source {source!r} does not exist: expected an image or a folder of images."
        )
    images, skipped = [], []
    for path, _ in find_photos(source):
        if len(images) == count:
            break
        try:
            images.append(to_signed_unit(resize_uint8(read_image(path), side, side)))
        except (ImageReadError, OSError):
            skipped.append(path)
    if skipped:
        print(f"calibration: skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]!r}")
    if not images:
        raise ValueError(
            f"No readable calibration image in --source {source!r} ({len(skipped)} "
            "unreadable); nothing was written."
        )
    print(f"calibration: {len(images)} image(s) from {source}")
    images = np.stack(images)
    if channels == 1:
        images = images @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return images.astype(np.float32)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    for name in ("model", "output_dir"):
        if not FLAGS[name].value:
            raise ValueError(f"--{name} is required.")
    common.quiet_tensorflow()
    from facegan_tf.export import (
        IMAGE_KINDS,
        check_formats,
        export_generator,
        load_serving_generator,
    )

    formats = check_formats(FLAGS.formats)
    if FLAGS.int8 and "tflite" not in formats:
        raise ValueError(f"--int8 needs tflite in --formats. Received: formats={FLAGS.formats}")
    model, info = load_serving_generator(FLAGS.model, FLAGS.direction, FLAGS.image_size or None)
    side = FLAGS.image_size or info.get("image_size") or model.build_side
    calibration = None
    if FLAGS.int8 and FLAGS.source and model.kind in IMAGE_KINDS:
        calibration = _calibration(
            FLAGS.source, side, FLAGS.calibration_images, model.input_channels
        )
    manifest = export_generator(
        model,
        FLAGS.output_dir,
        formats,
        image_size=side,
        int8=FLAGS.int8,
        calibration=calibration,
        info=info,
        overwrite=FLAGS.overwrite,
        progress=FLAGS.progress,
    )
    print(json.dumps({"kind": manifest["kind"], "files": sorted(manifest["files"])}))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
