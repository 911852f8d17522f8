"""Face detectors with eye landmarks, behind one interface: uint8 RGB image -> list of `Face`.

Each backend imports its optional package only when it is made, and its weights come with
that package (nothing is downloaded at run time):

* ``mtcnn``: the MTCNN cascade (Zhang et al. 2016, "Joint Face Detection and Alignment using
  Multi-task Cascaded Convolutional Networks") of the ``mtcnn`` package, run with
  TensorFlow; five landmarks, of which the eye centres are used.
* ``dlib``: dlib's HOG + linear SVM frontal-face detector with the 5-point shape predictor
  of ``face-recognition-models`` (two corners per eye: the eye centre is their mean).
"""

from __future__ import annotations

import numpy as np

from facegan_tf.data.align import Face

DETECTORS = ("mtcnn", "dlib")
INSTALL = {
    "mtcnn": "pip install 'facegan_tf[align]'  (or: pip install mtcnn)",
    "dlib": "pip install dlib-bin face-recognition-models",
}


class DetectorUnavailableError(ValueError):
    """The optional package of a detector is not installed."""


def make_detector(name: str = "mtcnn", min_confidence: float | None = None):
    """A callable ``detect(image uint8 [H, W, 3]) -> list[Face]``.

    Args:
        name: one of ``DETECTORS``.
        min_confidence: faces scoring below are dropped (default 0.9 for mtcnn's
            probability, 0.5 for dlib's SVM score, which can be negative).
    """
    if name == "mtcnn":
        return _mtcnn(0.9 if min_confidence is None else min_confidence)
    if name == "dlib":
        return _dlib(0.5 if min_confidence is None else min_confidence)
    raise ValueError(
        f"Unknown face detector. Expected one of {DETECTORS}. Received: detector={name!r}"
    )


def _missing(name: str, error: ImportError) -> DetectorUnavailableError:
    return DetectorUnavailableError(
        f"The {name} face detector needs an optional package ({error}). Install it with: "
        f"{INSTALL[name]}"
    )


def _mtcnn(min_confidence: float):
    try:
        from mtcnn import MTCNN
    except ImportError as error:
        raise _missing("mtcnn", error) from error
    network = MTCNN(device="CPU:0")

    def detect(image: np.ndarray) -> list[Face]:
        faces = []
        for found in network.detect_faces(np.ascontiguousarray(image)):
            if float(found["confidence"]) < min_confidence:
                continue
            points = found["keypoints"]
            eyes = sorted(
                [
                    tuple(float(v) for v in points["left_eye"]),
                    tuple(float(v) for v in points["right_eye"]),
                ]
            )
            faces.append(
                Face(
                    box=tuple(float(v) for v in found["box"]),
                    left_eye=eyes[0],
                    right_eye=eyes[1],
                    confidence=float(found["confidence"]),
                    landmarks={k: [float(v) for v in p] for k, p in points.items()},
                )
            )
        return faces

    return detect


def _dlib(min_confidence: float):
    try:
        import dlib
        import face_recognition_models
    except ImportError as error:
        raise _missing("dlib", error) from error
    finder = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )

    def detect(image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        boxes, scores, _ = finder.run(image, 1, 0.0)  # upsample once for small faces
        faces = []
        for box, score in zip(boxes, scores):
            if score < min_confidence:
                continue
            parts = np.array([(p.x, p.y) for p in predictor(image, box).parts()], np.float64)
            eyes = sorted([tuple(parts[0:2].mean(axis=0)), tuple(parts[2:4].mean(axis=0))])
            faces.append(
                Face(
                    box=(box.left(), box.top(), box.width(), box.height()),
                    left_eye=eyes[0],
                    right_eye=eyes[1],
                    confidence=float(score),
                    landmarks={"nose": parts[4].tolist()},
                )
            )
        return faces

    return detect
