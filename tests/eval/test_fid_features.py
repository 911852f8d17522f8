"""Batched extraction from arrays and folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facegan_tf.eval import features, inception


def test_batching_and_folders_give_the_golden_features(fid_model, golden, tmp_path):
    images = golden["images_64"][:3]
    one_batch = features.extract_features(fid_model, images, batch_size=3, progress=False)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i:02d}.png")
    from_folder, resolution = features.extract_folder_features(
        fid_model, str(tmp_path), batch_size=2, progress=False)
    assert resolution == "64x64"
    assert np.abs(one_batch - golden["features_64"][:3]).max() < 1e-3
    assert np.abs(from_folder - golden["features_64"][:3]).max() < 1e-3


def test_folder_statistics_are_labelled(fid_model, golden, tmp_path):
    for i, image in enumerate(golden["images_64"][:2]):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    stats = features.folder_statistics(fid_model, str(tmp_path), progress=False)
    assert stats.network == inception.FID_NETWORK_ID
    assert stats.resolution == "64x64"
    assert stats.data_key == f"folder-sha256:{features.folder_fingerprint(str(tmp_path))}"
    assert stats.num_images == 2 and stats.features.shape == (2, 2048)


def test_mixed_sizes_and_bad_ranges_are_refused(fid_model, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"b.png.*8x9, expected 8x8"):
        features.extract_folder_features(fid_model, str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="generated_to_uint8"):
        features.extract_features(fid_model, np.full((1, 8, 8, 3), -0.5, np.float32))
    with pytest.raises(ValueError, match=r"images.shape=\(8, 8, 3\)"):
        features.extract_features(fid_model, np.zeros((8, 8, 3), np.uint8))


def test_generated_images_are_quantised_like_png():
    x = np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.2], np.float32).reshape(1, 1, 6, 1)
    x = np.repeat(x, 3, axis=-1)
    expected = np.clip(np.round((x.astype(np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(features.generated_to_uint8(x), expected)
