"""Bad and unusual input files: every reader decodes what is an image and skips (counting) or
refuses what is not, naming the file."""

import logging
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

from facegan_tf.data import faces, ipcgan_lists, unpaired
from facegan_tf.data.images import ImageReadError, SkipCounter, read_image
from tests.reliability.conftest import broken_files, jpeg_bytes, png_bytes, write, write_gray_pngs

BROKEN = broken_files()


def warnings_of(caplog, module, start=""):
    """Messages of the WARNING records ``facegan_tf.data.<module>`` logged (those that start
    with ``start``)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == f"facegan_tf.data.{module}" and record.levelno == logging.WARNING
        and record.getMessage().startswith(start)
    ]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_raises_an_error_naming_it(tmp_path, name):
    path = write(tmp_path / "dir with space" / name, BROKEN[name])
    with pytest.raises(ImageReadError, match="Cannot decode image") as info:
        read_image(path)
    assert path in str(info.value)
    assert "\n" not in str(info.value)


def _mode_cases(tmp_path):
    """name -> (path, expected uint8 RGB computed here from the definition)."""
    rng = np.random.default_rng(1)
    cases = {}
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    cases["grayscale"] = (
        write(tmp_path / "g.png", png_bytes(gray)), np.repeat(gray[..., None], 3, 2)
    )
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    alpha = rgba[..., 3:].astype(np.float64) / 255.0
    composited = np.round(rgba[..., :3] * alpha).astype(np.int64)
    cases["rgba"] = (write(tmp_path / "a.png", png_bytes(rgba)), composited)
    palette_index = rng.integers(0, 4, (5, 7), dtype=np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    image = Image.frombytes("P", (7, 5), palette_index.tobytes())
    image.putpalette(colours.flatten().tolist() + [0] * (768 - 12))
    cases["palette"] = (write(tmp_path / "p.png", _save(image, "PNG")), colours[palette_index])
    sixteen = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    eight = np.round(sixteen.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    cases["png16"] = (
        write(tmp_path / "s.png", _save(Image.fromarray(sixteen), "PNG")),
        np.repeat(eight[..., None], 3, 2),
    )
    cmyk = Image.new("CMYK", (8, 8), (100, 0, 0, 0))  # cyan 100 -> R = 255 - 100
    cases["cmyk_jpeg"] = (
        write(tmp_path / "c.jpg", jpeg_bytes(cmyk)), np.full((8, 8, 3), [155, 255, 255])
    )
    # EXIF orientation 6 = the stored pixels must be rotated 90 degrees clockwise to show.
    stored = np.zeros((6, 10, 3), np.uint8)
    stored[:, :5] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = np.rot90(stored, k=-1)  # clockwise
    cases["exif_rotated"] = (
        write(tmp_path / "e.jpg", jpeg_bytes(Image.fromarray(stored), exif=exif.tobytes())),
        upright,
    )
    return cases


def _save(image, fmt) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode", ["grayscale", "rgba", "palette", "png16", "cmyk_jpeg", "exif_rotated"]
)
def test_unusual_modes_decode_to_upright_rgb(tmp_path, mode):
    path, expected = _mode_cases(tmp_path)[mode]
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == expected.shape
    tolerance = 4 if path.endswith(".jpg") else 0  # JPEG is lossy
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= tolerance


def test_tiny_and_huge_images_are_resized_to_the_model_size(tmp_path):
    tiny = write(tmp_path / "tiny.png", png_bytes(np.full((3, 2), 200, np.uint8)))
    huge_pixels = np.zeros((4000, 3000), np.uint8)
    huge_pixels[:, 1500:] = 255
    huge = write(tmp_path / "huge.png", png_bytes(huge_pixels))
    small = unpaired.load_for_model(tiny, 16)
    assert small.shape == (16, 16, 3)
    np.testing.assert_allclose(small, 200 / 127.5 - 1, atol=1e-6)  # a constant stays constant
    large = unpaired.load_for_model(huge, 16)
    assert large.shape == (16, 16, 3)
    np.testing.assert_allclose(large[:, :7], -1, atol=1e-6)  # left half black
    np.testing.assert_allclose(large[:, 9:], 1, atol=1e-6)  # right half white


def test_non_ascii_and_space_paths_flow_through_tf_data(tmp_path):
    root = tmp_path / "données d'été" / "日本 語"
    for sub in ("trainA", "trainB"):
        write_gray_pngs(root / sub, 2, seed=len(sub), prefix="visage é ")
    folders = unpaired.scan_unpaired_folders(str(root))
    assert all(" é " in os.path.basename(p) for p in folders.train_a)
    batches = list(
        unpaired.cyclegan_epoch_dataset(
            folders, epoch=0, seed=0, batch_size=1, load_size=16, fine_size=16
        )
    )
    assert len(batches) == 2


def test_cyclegan_pipeline_skips_undecodable_files_inside_tf_data_and_counts(tmp_path, caplog):
    root = tmp_path / "data"
    for sub in ("trainA", "trainB"):
        write_gray_pngs(root / sub, 4, seed=len(sub))
    # Both pass the header screening but fail to decode: only tf.data can catch them.
    write(root / "trainA" / "zz_truncated.jpg", BROKEN["truncated.jpg"])
    write(root / "trainB" / "zz_corrupt.jpg", BROKEN["corrupt.jpg"])
    folders = unpaired.scan_unpaired_folders(str(root))
    assert len(folders.train_a) == 5 and folders.skipped == ()
    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="facegan_tf.data.unpaired"):
        batches = list(
            unpaired.cyclegan_epoch_dataset(
                folders, epoch=0, seed=3, batch_size=1, load_size=16, fine_size=16,
                skipped=skipped,
            )
        )
    pairs = unpaired.epoch_pairs(folders.train_a, folders.train_b, 3, 0, 1)
    bad = [p for p in pairs if "zz_" in p[0] or "zz_" in p[1]]
    assert len(batches) == len(pairs) - len(bad)
    assert sorted(skipped.paths) == sorted(
        next(x for x in pair if "zz_" in x) for pair in bad
    )
    # One warning per skipped file, naming it and why (logged from inside tf.data).
    messages = warnings_of(caplog, "unpaired")
    assert len(messages) == skipped.count >= 1
    for path, message in zip(sorted(skipped.paths), sorted(messages)):
        assert message.startswith("skipping Cannot decode image") and repr(path) in message


def test_screening_skips_header_broken_files_and_refuses_a_mostly_broken_folder(
    tmp_path, caplog
):
    folder = tmp_path / "trainA"
    write_gray_pngs(folder, 3)
    for name in ("zero_byte.png", "text.jpg"):
        write(folder / name, BROKEN[name])
    with caplog.at_level(logging.WARNING, logger="facegan_tf.data.unpaired"):
        good, bad = unpaired.screen_images(sorted(str(p) for p in folder.iterdir()), str(folder))
    assert len(good) == 3
    assert sorted(os.path.basename(p) for p in bad) == ["text.jpg", "zero_byte.png"]
    messages = warnings_of(caplog, "unpaired")
    assert [m.split(":")[0] for m in messages] == [f"skipping unreadable image {p}" for p in bad]
    assert "empty file" in messages[bad.index(str(folder / "zero_byte.png"))]
    for name in ("corrupt.png", "truncated.png"):
        write(folder / name, BROKEN[name])
    with pytest.raises(ValueError, match=r"4 of 7 files .* are not readable images"):
        unpaired.screen_images(sorted(str(p) for p in folder.iterdir()), str(folder))


def test_face_sets_skip_broken_files_keep_labels_aligned_and_refuse_mostly_broken(
    tmp_path, caplog
):
    root = tmp_path / "classes"
    bright = np.full((8, 8), 250, np.uint8)
    dark = np.full((8, 8), 5, np.uint8)
    write(root / "a_dark" / "1.png", png_bytes(dark))
    write(root / "a_dark" / "2.jpg", BROKEN["truncated.jpg"])
    write(root / "b_bright" / "only.png", png_bytes(bright))  # a class with one image
    with caplog.at_level(logging.WARNING, logger="facegan_tf.data.faces"):
        face_set = faces.load_class_folders(str(root), crop_size=0, image_size=8)
    assert face_set.class_names == ("a_dark", "b_bright")
    assert len(face_set.skipped) == 1 and face_set.skipped[0].endswith("2.jpg")
    broken = face_set.skipped[0]
    # The file's own warning, then the count when the set is loaded.
    assert warnings_of(caplog, "faces") == [
        f"skipping unreadable image: Cannot decode image {broken!r}: "
        + warnings_of(caplog, "faces")[0].split(f"{broken!r}: ", 1)[1],
        f"1 of 3 image files could not be decoded and were skipped (first: {broken})",
    ]
    assert face_set.labels.tolist() == [0, 1]
    assert face_set.images[0].max() < 20 and face_set.images[1].min() > 230
    write(root / "b_bright" / "x.png", BROKEN["zero_byte.png"])
    write(root / "b_bright" / "y.jpg", BROKEN["text.jpg"])
    with pytest.raises(ValueError, match="3 of the first 5 files are not readable"):
        faces.load_class_folders(str(root), crop_size=0, image_size=8)


def test_ipcgan_pipeline_skips_undecodable_files_and_keeps_the_step_count(tmp_path, caplog):
    good = [write(tmp_path / f"f{i}.png", png_bytes(np.full((8, 8, 3), 40 * i, np.uint8)))
            for i in range(4)]
    broken = write(tmp_path / "broken.jpg", BROKEN["truncated.jpg"])
    lists = ipcgan_lists.IPCGANLists(
        groups=((good[0], broken), (good[1], good[2])),
        sources=(good[3], broken),
        pairs=np.array([[0, 1], [1, 0]], np.int32),
    )
    sampler = ipcgan_lists.IPCGANSampler(lists, batch_size=2, seed=0)
    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="facegan_tf.data.ipcgan_lists"):
        batches = list(
            ipcgan_lists.training_dataset(sampler, 0, image_size=8, alexnet_size=8, num_steps=6,
                                          skipped=skipped)
        )
        # Prefetching may still read ahead; wait until every skip has had its warning.
        deadline = time.monotonic() + 30
        while len(warnings_of(caplog, "ipcgan_lists", "skipping")) != skipped.count:
            assert time.monotonic() < deadline, (skipped.count, caplog.messages)
            time.sleep(0.05)
    assert len(batches) == 6
    assert skipped.count >= 1 and set(skipped.paths) == {broken}
    pattern = (rf"skipping unreadable image \(\d+ so far\): Cannot decode image "
               rf"{re.escape(repr(broken))}: ")
    assert all(re.match(pattern, m) for m in warnings_of(caplog, "ipcgan_lists", "skipping"))


def test_empty_and_missing_data_folders_are_refused_with_the_folder_named(tmp_path):
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    (tmp_path / "empty" / "trainB").mkdir()
    with pytest.raises(ValueError, match=r"trainA folder .*holds no image files"):
        unpaired.scan_unpaired_folders(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"--dataset_dir='.*nowhere' does not exist"):
        unpaired.scan_unpaired_folders(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"--data_dir .*nowhere.* does not exist"):
        faces.load_face_folder(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"--data_dir .*holds no image files"):
        faces.load_face_folder(str(tmp_path / "empty" / "trainA"))


def test_list_file_naming_a_missing_image_is_refused_naming_both(tmp_path):
    write_gray_pngs(tmp_path / "img", 1)
    list_file = tmp_path / "train_age_group_0.txt"
    list_file.write_text("img/img_0.png 0\nimg/missing_one.png 0\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError) as info:
        ipcgan_lists.read_image_list(str(list_file), str(tmp_path))
    message = str(info.value)
    assert str(list_file) in message and "missing_one.png" in message and ":2:" in message


def test_cyclegan_training_warns_with_the_skip_count_at_the_end(tmp_path, caplog):
    """The trainer's side of skip + warn + count: each undecodable file is named in a warning
    while training goes on, the end of the run warns with the count, and the summary holds
    it."""
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer
    from tests.reliability.conftest import TINY

    data = tmp_path / "data"
    write_gray_pngs(data / "trainA", 2)
    write(data / "trainA" / "zz_truncated.jpg", BROKEN["truncated.jpg"])  # passes screening
    write_gray_pngs(data / "trainB", 3, seed=1)
    config = CycleGANConfig(
        **{**TINY, "save_freq": 1000, "epochs": 1, "epoch_step": 1},
        dataset_dir=str(data), checkpoint_dir=str(tmp_path / "ckpt"),
        sample_dir=str(tmp_path / "s"), log_dir=str(tmp_path / "l"), num_sample_images=1,
    )
    with caplog.at_level(logging.WARNING):
        summary = CycleGANTrainer(config).fit(progress=False)
    # Three pairs per epoch use every trainA file; the broken one's pair is dropped.
    assert summary["step"] == 2 and summary["skipped_files"] == 1
    broken = str(data / "trainA" / "zz_truncated.jpg")
    skips = warnings_of(caplog, "unpaired", "skipping")
    assert len(skips) == 1 and skips[0].startswith(f"skipping Cannot decode image {broken!r}: ")
    ends = [r.getMessage() for r in caplog.records if r.name == "facegan_tf.training.cyclegan"
            and r.levelno == logging.WARNING]
    assert ends == ["1 image file(s) could not be decoded and were skipped"]
