"""IPCGAN losses against numpy references; list files, label pairs and list building."""

import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf import losses
from facegan_tf.data import ipcgan_lists as lists


def test_discriminator_and_generator_losses_match_the_formulas():
    rng = np.random.default_rng(0)
    d1, d2, d3 = (rng.normal(0, 1, (3, 2, 2, 4)).astype(np.float32) for _ in range(3))
    per_example = losses.ipcgan_discriminator_loss(d1, d2, d3, 75.0).numpy()
    reference = 75 * 0.5 * (np.mean((d1 - 1) ** 2) + 0.5 * (np.mean(d2**2) + np.mean(d3**2)))
    assert per_example.shape == (3,)
    assert per_example.mean() == pytest.approx(reference, rel=1e-5)
    g = losses.ipcgan_generator_adversarial_loss(d3, 75.0).numpy().mean()
    assert g == pytest.approx(75 * 0.5 * np.mean((d3 - 1) ** 2), rel=1e-5)


def test_identity_loss_is_a_per_sample_sum_and_age_loss_cross_entropy():
    a = np.ones((2, 3, 3, 4), np.float32)
    b = np.zeros_like(a)
    np.testing.assert_allclose(losses.ipcgan_identity_loss(a, b, 5e-5), [36 * 5e-5] * 2, rtol=1e-6)
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
    expected = -np.log(np.exp(logits[[0, 1], [0, 2]]) / np.exp(logits).sum(1))
    np.testing.assert_allclose(losses.ipcgan_age_loss(logits, [0, 2], 30.0), 30 * expected,
                               rtol=1e-5)


def test_legacy_resize_is_the_tf1_op_not_half_pixel():
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 4, 4, 1)).astype(np.float32)
    ours = losses.legacy_resize_bilinear(image, 7).numpy()
    # Independent reference: source coordinate = out * in / out_size, no half-pixel offset.
    scale = 4 / 7
    expected = np.zeros((7, 7))
    for y in range(7):
        for x in range(7):
            sy, sx = y * scale, x * scale
            y0, x0 = int(sy), int(sx)
            y1, x1 = min(y0 + 1, 3), min(x0 + 1, 3)
            dy, dx = sy - y0, sx - x0
            im = image[0, :, :, 0]
            top = im[y0, x0] * (1 - dx) + im[y0, x1] * dx
            bottom = im[y1, x0] * (1 - dx) + im[y1, x1] * dx
            expected[y, x] = top * (1 - dy) + bottom * dy
    np.testing.assert_allclose(ours[0, :, :, 0], expected, atol=1e-6)
    modern = tf.image.resize(image, (7, 7)).numpy()
    assert np.abs(modern - ours).max() > 1e-2
    generated = np.zeros((1, 4, 4, 3), np.float32)
    alex = losses.ipcgan_generated_to_alexnet_input(generated, 7).numpy()
    np.testing.assert_allclose(alex[0, 0, 0], [127.5 - 104, 127.5 - 117, 127.5 - 124])


def test_generator_losses_use_the_callables():
    fake = tf.zeros([2, 8, 8, 3])
    terms = losses.ipcgan_generator_losses(
        fake, tf.ones([2, 1, 1, 1]), tf.zeros([2, 2]), tf.constant([1, 1]),
        feature_extractor=lambda x: tf.reduce_mean(x, axis=[1, 2])[:, :2],
        age_classifier=lambda x: tf.zeros([2, 3]), alexnet_input_size=9,
    )
    assert terms["adversarial"].numpy() == pytest.approx([0.0, 0.0])
    np.testing.assert_allclose(terms["age"], 30 * np.log(3), rtol=1e-5)
    expected_fea = 5e-5 * ((127.5 - 104) ** 2 + (127.5 - 117) ** 2)
    np.testing.assert_allclose(terms["identity"], expected_fea, rtol=1e-4)
    np.testing.assert_allclose(terms["total"], terms["age"] + terms["identity"], rtol=1e-6)


def test_list_parsing_paths_and_errors(tmp_path, faces):
    faces(str(tmp_path / "img"), ["a.png", "b.png", "Zoë.png"])
    listing = tmp_path / "train_age_group_0.txt"
    listing.write_text("a.png 0\n\nb.png extra tokens\nZoë.png\n", encoding="utf-8")
    paths, labels = lists.read_image_list(str(listing), str(tmp_path / "img"))
    assert [os.path.basename(p) for p in paths] == ["a.png", "b.png", "Zoë.png"]
    assert labels == [0, None, None]
    listing.write_text("a.png 0\nmissing.png 0\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"train_age_group_0.txt:2: image .*missing.png"):
        lists.read_image_list(str(listing), str(tmp_path / "img"))
    source = tmp_path / "source.txt"
    source.write_text("a.png\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"source.txt:1: expected"):
        lists.read_image_list(str(source), str(tmp_path / "img"), require_label=True)
    source.write_text("a.png 7\n", encoding="utf-8")
    with pytest.raises(ValueError, match="label out of range"):
        lists.read_image_list(str(source), str(tmp_path / "img"), num_groups=5)


def test_label_pairs(tmp_path):
    pairs = lists.generate_label_pairs(5, 20, seed=3)
    assert len(pairs) == 400 and (pairs[:, 0] != pairs[:, 1]).all()
    counts = {tuple(p) for p in pairs.tolist()}
    assert len(counts) == 20
    path = str(tmp_path / "pairs.txt")
    lists.write_label_pairs(path, pairs)
    np.testing.assert_array_equal(lists.read_label_pairs(path, 5), pairs)
    with open(path, "a", encoding="utf-8") as f:
        f.write("2 5\n")
    with pytest.raises(ValueError, match=r"pairs.txt:401: age group out of range 0..4"):
        lists.read_label_pairs(path, 5)
    with open(path, "w", encoding="utf-8") as f:
        f.write("1 1\n")
    with pytest.raises(ValueError, match="must differ"):
        lists.read_label_pairs(path, 5)


def test_sampler_is_deterministic_and_walks_each_group(tiny_data):
    data = lists.load_ipcgan_lists(str(tiny_data / "lists"), str(tiny_data / "images"), 3)
    sampler = lists.IPCGANSampler(data, 4, seed=1)
    again = lists.IPCGANSampler(data, 4, seed=1)
    for step in (0, 5, 123):
        assert sampler.step(step) == again.step(step)
    entry = sampler.step(0)
    group = entry["true_group"]
    assert all(p in data.groups[group] for p in entry["reals"])
    assert len(set(entry["reals"])) == 4 and entry["false_group"] != group
    batch = next(iter(lists.training_dataset(sampler, 0, 16, 67, 1)))
    assert batch["source"].shape == (4, 16, 16, 3) and batch["source_alexnet"].shape[1] == 67
    assert float(tf.reduce_max(batch["real"])) <= 1.0 and float(tf.reduce_min(batch["real"])) >= -1
    with pytest.raises(ValueError, match="batch_size=9"):
        lists.IPCGANSampler(data, 9)


def test_build_lists_from_cacd_names_and_csv(tmp_path, faces):
    names = ["14_Ann_Lee_0001.jpg", "15_Ann_Lee_0002.jpg", "25_Bo_Kim_0001.jpg",
             "61_Cy_Ng_0001.jpg", "8_Too_Young_0001.jpg", "notes.txt"]
    faces(str(tmp_path / "img"), names[:-1])
    (tmp_path / "img" / "notes.txt").write_text("x")
    counts = lists.build_lists_from_folder(str(tmp_path / "img"), str(tmp_path / "out"),
                                           test_fraction=0.0, label_pair_repeats=2)
    assert counts["train_age_group_0"] == 2 and counts["train_age_group_4"] == 1
    assert counts["outside_groups"] == 1 and counts["source"] == 2
    pairs = lists.read_label_pairs(str(tmp_path / "out" / "train_label_pair.txt"), 5)
    assert len(pairs) == 40
    table = tmp_path / "ages.csv"
    table.write_text("file,age\n14_Ann_Lee_0001.jpg,40\n25_Bo_Kim_0001.jpg,33\n")
    counts = lists.build_lists_from_folder(str(tmp_path / "img"), str(tmp_path / "csv"),
                                           age_table=str(table), age_groups="0-35,36-",
                                           test_fraction=0.0)
    assert counts["train_age_group_0"] == 1 and counts["train_age_group_1"] == 1
    assert counts["no_age"] == 3
    with pytest.raises(ValueError, match="age_groups='20-10'"):
        lists.parse_age_groups("20-10")
    with pytest.raises(ValueError, match="disjoint"):
        lists.parse_age_groups("10-20,15-30")
