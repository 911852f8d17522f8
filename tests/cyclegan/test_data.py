"""Unpaired data pipeline, robust decoding and the UTKFace preparation."""

import os

import numpy as np
import pytest
from PIL import Image

from facegan_tf.data.images import read_image, save_image
from facegan_tf.data.unpaired import (
    SkipCounter,
    augment_pair,
    batches_per_epoch,
    cyclegan_epoch_dataset,
    epoch_pairs,
    scan_unpaired_folders,
)
from facegan_tf.data.utkface import build_cyclegan_folder, parse_utkface_name, scan_utkface


def test_epoch_length_is_set_by_the_shorter_domain():
    assert batches_per_epoch(10, 7, 1) == 7
    assert batches_per_epoch(10, 7, 2) == 3
    assert batches_per_epoch(10, 7, 1, train_size=5) == 5
    pairs = epoch_pairs([f"a{i}" for i in range(10)], [f"b{i}" for i in range(7)], 1, 0, 2)
    assert len(pairs) == 6 and len({a for a, _ in pairs}) == 6
    assert pairs != epoch_pairs([f"a{i}" for i in range(10)], [f"b{i}" for i in range(7)], 1, 1, 2)


def test_crop_and_flip_are_shared_and_legacy_offsets_never_zero():
    rng_image = np.random.default_rng(0).uniform(-1, 1, (40, 40, 3)).astype(np.float32)
    tops = set()
    for seed in range(200):
        a, b = augment_pair(rng_image, rng_image.copy(), 40, 32, np.random.default_rng(seed), True)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (32, 32, 3)
        for top in range(9):
            if np.array_equal(a, rng_image[top : top + 32, :32]) or np.array_equal(
                a[:, ::-1], rng_image[top : top + 32, :32]
            ):
                tops.add(top)
    assert 0 not in tops


def _images(folder, count, size=12, start=0):
    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + count):
        save_image(os.path.join(folder, f"{i}.png"), np.full((size, size, 3), 10 * i, np.uint8))


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    _images(tmp_path / "trainA", 4)
    _images(tmp_path / "trainB", 4)
    (tmp_path / "trainA" / "zero.png").write_bytes(b"")
    folders = scan_unpaired_folders(str(tmp_path))
    assert len(folders.train_a) == 4 and len(folders.skipped) == 1
    # A file that passes the header check but fails to decode is skipped inside tf.data.
    truncated = tmp_path / "trainB" / "3.png"
    save_image(str(truncated), np.random.default_rng(1).integers(0, 256, (12, 12, 3), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:200])
    skipped = SkipCounter()
    batches = list(
        cyclegan_epoch_dataset(
            folders, epoch=0, seed=1, batch_size=1, load_size=12, fine_size=8, skipped=skipped
        )
    )
    assert len(batches) == 3 and skipped.count == 1
    assert batches[0]["real_a"].shape == (1, 8, 8, 3)


def test_mostly_unreadable_folder_is_refused(tmp_path):
    _images(tmp_path / "trainA", 1)
    for i in range(3):
        (tmp_path / "trainA" / f"bad{i}.jpg").write_text("not an image")
    _images(tmp_path / "trainB", 2)
    with pytest.raises(ValueError, match="3 of 4 files .* are not readable images"):
        scan_unpaired_folders(str(tmp_path))


def test_empty_domain_folder_is_refused(tmp_path):
    _images(tmp_path / "trainA", 2)
    (tmp_path / "trainB").mkdir()
    with pytest.raises(ValueError, match="trainB folder .* holds no image files"):
        scan_unpaired_folders(str(tmp_path))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_odd_image_modes_decode_to_rgb(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257).astype("<u2"))
        assert image.mode.startswith("I;16")
    else:
        image = base.convert(mode)
    path = str(tmp_path / ("x.jpg" if mode == "CMYK" else "x.png"))
    image.save(path)
    array = read_image(path)
    assert array.shape == (9, 7, 3) and array.dtype == np.uint8
    if mode in ("L", "I;16"):
        np.testing.assert_array_equal(array[..., 0], np.asarray(base.convert("L")))


def test_utkface_names_and_split(tmp_path):
    assert parse_utkface_name("26_0_2_20170104023102422.jpg.chip.jpg") == (26, 0, 2)
    assert parse_utkface_name("61_3_20170109150557335.jpg") is None
    assert parse_utkface_name("53__0_20170116184028385.jpg") is None
    source = tmp_path / "utk"
    source.mkdir()
    names = ["20_0_0_1.jpg", "22_1_1_2.jpg", "55_0_2_3.jpg", "30_1_0_4.jpg", "53__0_5.jpg"]
    for name in names:
        save_image(str(source / name), np.zeros((4, 4, 3), np.uint8))
    records, malformed = scan_utkface(str(source))
    assert malformed == ["53__0_5.jpg"]
    counts = build_cyclegan_folder(records, str(tmp_path / "aging"), test_fraction=0.0)
    assert (counts["trainA"], counts["trainB"]) == (2, 1)
    assert sorted(os.listdir(tmp_path / "aging" / "trainA")) == ["20_0_0_1.jpg", "22_1_1_2.jpg"]
    counts = build_cyclegan_folder(
        records, str(tmp_path / "gender"), split="gender", test_fraction=0.0, mode="copy"
    )
    assert (counts["trainA"], counts["trainB"]) == (2, 2)


def test_empty_test_folders_are_optional_when_training(tmp_path, random_images):
    """prepare_utkface creates testA/testB even when no photo hashes into the test split."""
    from facegan_tf.data.unpaired import scan_unpaired_folders

    random_images(tmp_path / "trainA", 2, seed=0)
    random_images(tmp_path / "trainB", 2, seed=1)
    (tmp_path / "testA").mkdir()
    (tmp_path / "testB").mkdir()
    folders = scan_unpaired_folders(str(tmp_path))
    assert len(folders.train_a) == 2 and folders.test_a == () and folders.test_b == ()
    for path in (tmp_path / "trainB").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match="trainB folder .* holds no image files"):
        scan_unpaired_folders(str(tmp_path))


def scipy_bytescale(data):
    """SciPy <= 1.1 ``misc.bytescale(data)`` for float data, written from its formula."""
    cmin, cmax = data.min(), data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(255 - 0) / cscale
    bytedata = (data - cmin) * scale + 0
    return (bytedata.clip(0, 255) + 0.5).astype(np.uint8)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).uniform(0.1, 0.7, (9, 7, 3)),  # outputs (x + 1) / 2 on save
        np.arange(30, dtype=np.float64).reshape(2, 5, 3) * 2 + 100,  # span 58
        np.array([[[10.0, 13.0, 20.0]]]),  # span 10: 3 * 25.5 = 76.5 rounds up to 77, not to 76
        np.full((4, 4, 3), 128.0),  # constant: SciPy takes the span as 1 -> all 0
        np.random.default_rng(1).integers(0, 256, (6, 6, 3)).astype(np.float64),
    ],
)
def test_legacy_bytescale_equals_scipy_bytescale(image):
    from facegan_tf.data.images import legacy_bytescale

    np.testing.assert_array_equal(legacy_bytescale(image), scipy_bytescale(image))


def test_legacy_bytescale_flag_stretches_inputs_and_outputs(tmp_path):
    """--legacy_bytescale: an input is read as float64, byte-scaled, then resized with PIL
    bilinear (the original's imread + imresize) and scaled by u / 127.5 - 1; an output y is
    written as bytescale((y + 1) / 2) (the original's imsave)."""
    import keras
    import tensorflow as tf

    from facegan_tf.data.unpaired import load_for_model
    from facegan_tf.training.cyclegan_inference import translate_folder

    rng = np.random.default_rng(2)
    dim = rng.integers(60, 71, (12, 10, 3)).astype(np.uint8)  # a dark, low-contrast face
    path = str(tmp_path / "dim.png")
    save_image(path, dim)
    stretched = scipy_bytescale(dim.astype(np.float64))
    resized = np.asarray(Image.fromarray(stretched).resize((8, 8), Image.BILINEAR))
    expected_input = (resized.astype(np.float64) / 127.5 - 1.0).astype(np.float32)
    loaded = load_for_model(path, 8, legacy_bytescale_mode=True)
    np.testing.assert_array_equal(loaded, expected_input)
    plain = load_for_model(path, 8)
    assert plain.max() < -0.4  # without the flag the face stays dark

    generator = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(lambda x: 0.1 * x)])
    result = translate_folder(
        generator, [path], str(tmp_path / "out"), "AtoB", 8, legacy_bytescale_mode=True,
        progress=False,
    )
    written = np.asarray(Image.open(result["written"][0]))
    output = 0.1 * tf.constant(expected_input).numpy()
    np.testing.assert_array_equal(written, scipy_bytescale((output + 1.0) / 2.0))
