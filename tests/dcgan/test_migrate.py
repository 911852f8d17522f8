"""sualab checkpoint conversion against the outputs of the original TF1 graph."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.migrate import LegacyCheckpointError, load_legacy_with_info
from facegan_tf.migrate.dcgan_sualab import convert_dcgan_sualab

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "dcgan_sualab")
RUN_DIR = os.path.join(FIXTURE, "DCGAN_training_FFHQ_z_100_96crop_01")
PREFIX = os.path.join(RUN_DIR, "model_94.ckpt")


@pytest.fixture(scope="module")
def golden():
    with np.load(os.path.join(FIXTURE, "golden.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def converted():
    return load_legacy_with_info("dcgan_sualab", RUN_DIR)


def test_inference_mode_outputs_match_tf1(converted, golden):
    models, _ = converted
    generator, discriminator = models["generator"], models["discriminator"]
    fake = generator(golden["z"], training=False).numpy()
    assert np.abs(fake - golden["G_z"]).max() < 1e-4
    real_logits = discriminator(golden["x_real"], training=False).numpy()
    fake_logits = discriminator(fake, training=False).numpy()
    for ours, ref in (
        (real_logits, golden["D_logits_real"]),
        (fake_logits, golden["D_logits_fake"]),
    ):
        assert ours.shape == (4, 1)
        np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)


def test_train_mode_outputs_match_tf1_on_the_whole_batch(golden):
    # A fresh conversion: training=True updates the moving averages.
    models, _ = load_legacy_with_info("dcgan_sualab", PREFIX)
    fake = models["generator"](golden["z"], training=True).numpy()
    assert np.abs(fake - golden["G_z_train_mode"]).max() < 1e-4
    logits = models["discriminator"](golden["x_real"], training=True).numpy()
    np.testing.assert_allclose(logits, golden["D_logits_real_train_mode"], atol=1e-4, rtol=1e-4)


def test_bookkeeping_matches_vars_json(converted):
    _, info = converted
    with open(os.path.join(FIXTURE, "vars.json"), encoding="utf-8") as f:
        variables = {v["name"]: v["shape"] for v in json.load(f)["variables"]}
    skipped = {n for n in variables if re.fullmatch(r".*/Adam(_1)?|beta[12]_power(_1)?", n)}
    model_tensors = set(variables) - skipped
    assert len(model_tensors) == 48 and len(skipped) == 72
    assert sorted(info["loaded"]) == sorted(model_tensors)
    assert len(info["loaded"]) == len(set(info["loaded"]))
    assert set(info["ignored"]) == skipped
    assert (info["z_dim"], info["G_FC_layer_channel"], info["G_channel"], info["D_channel"]) == (
        100,
        16,
        8,
        8,
    )
    assert info["image_size"] == 64
    assert info["hyperparam_json"]["G_channel"] == 8


def test_explicit_other_width_is_refused_with_shapes():
    with pytest.raises(
        LegacyCheckpointError,
        match=r"shape mismatch for generator/batch_normalization_1/gamma: checkpoint \[32\]",
    ):
        load_legacy_with_info("dcgan_sualab", PREFIX, G_channel=16)


def _write_tf1_checkpoint(prefix, arrays):
    with tf.Graph().as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in arrays.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False)


def test_checkpoint_with_inconsistent_widths_is_refused(tmp_path):
    reader = tf.train.load_checkpoint(PREFIX)
    arrays = {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if not re.fullmatch(r".*/Adam(_1)?|beta[12]_power(_1)?", name)
    }
    # A wider second transposed convolution breaks the 2x width pattern.
    arrays["generator/conv2d_transpose_1/kernel"] = np.zeros((5, 5, 24, 32), np.float32)
    _write_tf1_checkpoint(str(tmp_path / "model_1.ckpt"), arrays)
    with pytest.raises(LegacyCheckpointError, match=r"\[32, 24, 8, 3\].*DCGAN pattern"):
        load_legacy_with_info("dcgan_sualab", str(tmp_path / "model_1.ckpt"))


def test_other_model_kind_is_refused():
    cyclegan = os.path.join(FIXTURE, "..", "cyclegan_xhujoy_resnet", "checkpoint", "horse2zebra_64")
    if not os.path.isdir(cyclegan):
        pytest.skip("cyclegan fixture not present")
    with pytest.raises(LegacyCheckpointError, match="not a sualab DCGAN checkpoint"):
        load_legacy_with_info("dcgan_sualab", cyclegan)


def test_missing_checkpoint_is_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_legacy_with_info("dcgan_sualab", str(tmp_path / "model_3.ckpt"))


def test_convert_writes_keras_files_that_reload(tmp_path, golden):
    import keras

    record = convert_dcgan_sualab(RUN_DIR, str(tmp_path))
    generator = keras.models.load_model(record["files"]["generator"])
    fake = generator(golden["z"], training=False).numpy()
    assert np.abs(fake - golden["G_z"]).max() < 1e-4
    assert len(record["loaded"]) == 48
