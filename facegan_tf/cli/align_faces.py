"""Detect and align faces in photos: eyes level, fixed margin, square PNG crops.

Writes ``<output_dir>/<same relative folders>/<name>.png`` for every face, ``report.json``
(photos with no face, with several faces, unreadable files) and ``index.html`` (photo |
aligned face). The detector's weights ship with its package: ``pip install
'facegan_tf[align]'`` for the default ``--detector=mtcnn``.

Examples:
    python tools/align_faces.py --source=./photos --output_dir=./aligned --size=256
    python tools/align_faces.py --source=./CACD --output_dir=./CACD_aligned --size=400 \\
        --margin=0.25 --multiple_faces=skip
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("source", None, "A photo, or a folder of photos (searched recursively).")
flags.DEFINE_string("output_dir", None, "Folder for the aligned PNGs, report.json and index.html.")
flags.DEFINE_integer(
    "size",
    256,
    "Side of the square crops in pixels (e.g. 400 for IPCGAN's pipeline, 256 for CycleGAN).",
)
flags.DEFINE_float(
    "margin",
    0.2,
    "Context on each side, as a fraction of the crop side, around a face square "
    "twice the eye distance wide (0 = tight; the eye distance is (1 - 2 margin) size / 2).",
)
flags.DEFINE_float("eye_line", 0.4, "Height of the eye line within the face square (0 = top).")
flags.DEFINE_enum(
    "multiple_faces",
    "largest",
    ["largest", "all", "skip"],
    "Photos with several faces: keep the largest face, write every face (<name>_face<k>.png), "
    "or skip the photo. Every such photo is listed in report.json either way.",
)
flags.DEFINE_enum("detector", "mtcnn", ["mtcnn", "dlib"], "Face detector (see --help text above).")
flags.DEFINE_float(
    "min_confidence",
    None,
    "Drop detections scoring below this (default 0.9 for mtcnn, 0.5 for dlib's SVM score).",
)
flags.DEFINE_enum(
    "border",
    "edge",
    ["edge", "black"],
    "Crop parts outside the photo repeat its edge pixels, or are black.",
)
flags.DEFINE_bool("overwrite", False, "Allow writing into a non-empty --output_dir.")
flags.DEFINE_bool("gallery", True, "Write index.html (photo | aligned face).")
flags.mark_flags_as_required(["source", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    common.quiet_tensorflow()
    from facegan_tf.data.align import align_photos, check_alignment_options, find_photos
    from facegan_tf.data.face_detectors import make_detector
    from facegan_tf.training.progress import ProgressBar
    from facegan_tf.training.samples import write_gallery

    check_alignment_options(FLAGS.size, FLAGS.margin, FLAGS.eye_line)
    output_dir = FLAGS.output_dir
    if os.path.isfile(output_dir):
        raise NotADirectoryError(f"--output_dir {output_dir!r} is a file, expected a folder.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not FLAGS.overwrite:
        raise ValueError(
            f"--output_dir {output_dir!r} is not empty; choose a new folder or pass --overwrite "
            "to replace files of the same names."
        )
    photos = find_photos(FLAGS.source, skip_folder=output_dir)
    detect = make_detector(FLAGS.detector, FLAGS.min_confidence)
    bar = ProgressBar(len(photos), label="align", unit="img")
    report = align_photos(
        FLAGS.source,
        output_dir,
        detect,
        size=FLAGS.size,
        margin=FLAGS.margin,
        eye_line=FLAGS.eye_line,
        multiple_faces=FLAGS.multiple_faces,
        border=FLAGS.border,
        on_photo=bar.update,
        settings={"detector": FLAGS.detector},
    )
    bar.close()
    if FLAGS.gallery:
        source_root = (
            FLAGS.source
            if os.path.isdir(FLAGS.source)
            else os.path.dirname(os.path.abspath(FLAGS.source))
        )
        rows = [
            [os.path.join(source_root, item["source"]), os.path.join(output_dir, item["output"])]
            for item in report["aligned"]
        ]
        write_gallery(
            os.path.join(output_dir, "index.html"),
            f"Aligned faces ({FLAGS.size} x {FLAGS.size})",
            ["photo", "aligned"],
            rows,
            captions=[item["output"] for item in report["aligned"]],
            notes={
                "source": report["source"],
                "detector": FLAGS.detector,
                "margin": FLAGS.margin,
                "no face": ", ".join(report["no_face"]) or "none",
                "several faces": ", ".join(
                    f"{item['source']} ({item['faces']})" for item in report["several_faces"]
                )
                or "none",
                "unreadable": ", ".join(item["source"] for item in report["unreadable"]) or "none",
            },
        )
    counts = report["counts"]
    print(
        f"aligned {counts['faces_written']} face(s) from {counts['photos']} photo(s) into "
        f"{output_dir}; no face: {counts['no_face']}; several faces: {counts['several_faces']} "
        f"({FLAGS.multiple_faces}); unreadable (skipped): {counts['unreadable']}; details in "
        f"{os.path.join(output_dir, 'report.json')}"
    )
    for name in report["no_face"][:10]:
        print(f"  no face: {name}")
    for item in report["several_faces"][:10]:
        print(f"  {item['faces']} faces: {item['source']}")
    for item in report["unreadable"][:10]:
        print(f"  unreadable: {item['source']}")
    print(json.dumps(counts))
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
