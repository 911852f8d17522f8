"""The Keras port against the golden torch-reference features of the 2015-12-05 network."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.eval import inception

from .conftest import FIXTURES


def _legacy_bilinear_reference(image: np.ndarray, size: int) -> np.ndarray:
    """TF1 legacy bilinear resize in float64, written from its definition.

    src = dst * in / out (no half-pixel offset); interpolate between floor(src) and
    floor(src) + 1, the upper neighbour clamped to in - 1.
    """
    image = image.astype(np.float64)

    def axis_weights(n_in):
        src = np.arange(size) * (n_in / size)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, src - low

    y0, y1, fy = axis_weights(image.shape[0])
    x0, x1, fx = axis_weights(image.shape[1])
    top = image[y0][:, x0] * (1 - fx)[None, :, None] + image[y0][:, x1] * fx[None, :, None]
    bottom = image[y1][:, x0] * (1 - fx)[None, :, None] + image[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def test_structure_matches_reference_counts():
    specs = inception.conv_specs()
    shapes = inception.expected_weight_shapes()
    assert len(specs) == 94
    assert len(shapes) == 376
    assert sum(int(np.prod(s)) for s in shapes.values()) == 21_802_784
    model = inception.FIDInceptionV3()
    assert len(model.conv_units()) == 94
    assert model.count_params() == 21_802_784
    assert {unit.spec.name for unit in model.conv_units()} == {s.name for s in specs}


def test_preprocess_is_tf_legacy_bilinear_then_x_minus_128_over_128():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    expected = (_legacy_bilinear_reference(image, 299) - 128.0) / 128.0
    actual = inception.preprocess_fid_input(image[None]).numpy()[0]
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    half_pixel = (tf.image.resize(image[None].astype(np.float32), (299, 299)).numpy()[0]
                  - 128.0) / 128.0
    assert np.abs(half_pixel - expected).max() > 0.05


def test_preprocess_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"images.shape=\(2, 8, 8, 1\)"):
        inception.preprocess_fid_input(np.zeros((2, 8, 8, 1), np.uint8))


def test_features_match_golden(fid_model, golden):
    for key in ("64", "299"):
        features = fid_model(golden[f"images_{key}"]).numpy()
        reference = golden[f"features_{key}"]
        assert features.shape == reference.shape
        diff = np.abs(features - reference).max()
        assert diff < 1e-3, f"images_{key}: max abs diff {diff}"


def test_stage_outputs_match_golden_intermediates(fid_model, golden):
    with np.load(os.path.join(FIXTURES, "intermediates_img0.npz")) as data:
        reference = {key: data[key] for key in data.files}
    stages = fid_model.stage_outputs(golden["images_64"][:1])
    for name, expected in reference.items():
        actual = stages[name].numpy()
        assert actual.shape == expected.shape, name
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(actual - expected).max() < 1e-3 * scale, name
