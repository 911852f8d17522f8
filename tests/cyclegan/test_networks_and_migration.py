"""CycleGAN networks against facts and golden outputs of xhujoy/CycleGAN-tensorflow."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.migrate import LegacyCheckpointError, load_legacy, load_legacy_with_info
from facegan_tf.networks.cyclegan import (
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
)

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "cyclegan_xhujoy_resnet")
LEGACY_FOLDER = os.path.join(GOLDEN, "checkpoint", "horse2zebra_64")


def count_parameters(model):
    return sum(int(np.prod(w.shape)) for w in model.weights)


def test_parameter_counts_equal_the_original():
    assert count_parameters(build_generator(True, 64, 3, 9, image_size=32)) == 11_383_424
    assert count_parameters(build_generator(False, 64, 3, image_size=256)) == 54_415_104
    assert count_parameters(build_discriminator(64)) == 2_765_568


def test_patch_discriminator_logits_are_input_over_8():
    d = build_discriminator(4, image_size=256)
    assert tuple(d(np.zeros((1, 256, 256, 3), np.float32)).shape) == (1, 32, 32, 1)
    assert tuple(d(np.zeros((2, 48, 64, 3), np.float32)).shape) == (2, 6, 8, 1)


def test_generators_refuse_sizes_the_architecture_cannot_take():
    with pytest.raises(ValueError, match="multiple of 4"):
        ResnetGenerator(4, 1)(np.zeros((1, 30, 32, 3), np.float32))
    with pytest.raises(ValueError, match="multiple of 256"):
        UnetGenerator(2)(np.zeros((1, 128, 128, 3), np.float32))
    with pytest.raises(ValueError, match="multiple of 8"):
        PatchDiscriminator(2)(np.zeros((1, 20, 20, 3), np.float32))


def test_resnet_generator_is_fully_convolutional():
    g = build_generator(True, 4, 3, 1, image_size=16)
    out = g(np.zeros((1, 24, 40, 3), np.float32))
    assert tuple(out.shape) == (1, 24, 40, 3)


def test_unet_dropout_only_in_training():
    g = build_generator(False, 2, 3, image_size=256)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 256, 256, 3)).astype(np.float32)
    np.testing.assert_array_equal(g(x, training=False).numpy(), g(x, training=False).numpy())
    assert np.abs(g(x, training=True).numpy() - g(x, training=True).numpy()).max() > 0


@pytest.fixture(scope="module")
def legacy():
    return load_legacy_with_info("cyclegan_xhujoy", LEGACY_FOLDER)


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(os.path.join(GOLDEN, "golden.npz")))


def test_legacy_hparams_are_inferred_from_tensors(legacy):
    _, info = legacy
    assert info["use_resnet"] is True
    assert (info["ngf"], info["ndf"], info["num_blocks"]) == (8, 8, 9)
    assert (info["input_nc"], info["output_nc"]) == (3, 3)


def test_every_checkpoint_tensor_consumed_once(legacy):
    _, info = legacy
    with open(os.path.join(GOLDEN, "vars.json"), encoding="utf-8") as f:
        stored = json.load(f)
    names = [v["name"] for v in stored["variables"]]
    assert sorted(info["loaded"]) == sorted(names)
    assert len(info["loaded"]) == 162 and info["ignored"] == []


@pytest.mark.parametrize(
    "model_name, input_key, output_key",
    [("generator_a2b", "test_A", "fake_B"), ("generator_b2a", "test_B", "fake_A")],
)
def test_generators_match_original_graph(legacy, golden, model_name, input_key, output_key):
    models, _ = legacy
    out = models[model_name](golden[input_key], training=False).numpy()
    assert np.abs(out - golden[output_key]).max() < 1e-4


def test_discriminators_match_original_graph(legacy, golden):
    models, _ = legacy
    fake_b = models["generator_a2b"](golden["test_A"]).numpy()
    fake_a = models["generator_b2a"](golden["test_B"]).numpy()
    pairs = [
        (models["discriminator_a"](golden["test_A"]), golden["D_A_real"]),
        (models["discriminator_b"](golden["test_B"]), golden["D_B_real"]),
        (models["discriminator_b"](fake_b), golden["D_B_fake"]),
        (models["discriminator_a"](fake_a), golden["D_A_fake"]),
    ]
    for ours, reference in pairs:
        assert np.all(np.abs(ours.numpy() - reference) <= 1e-4 + 1e-4 * np.abs(reference))


def test_load_legacy_accepts_prefix_and_returns_the_four_models():
    models = load_legacy("cyclegan_xhujoy", os.path.join(LEGACY_FOLDER, "cyclegan.model-1002"))
    assert sorted(models) == [
        "discriminator_a",
        "discriminator_b",
        "generator_a2b",
        "generator_b2a",
    ]


def _write_tf1_checkpoint(prefix, tensors):
    """Writes ``tensors`` (name -> array) with the TF1 Saver in a private graph."""
    with tf.Graph().as_default():
        variables = {
            name: tf.compat.v1.get_variable(name.replace(":", "_"), initializer=value)
            for name, value in tensors.items()
        }
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False)


@pytest.fixture(scope="module")
def golden_tensors():
    reader = tf.train.load_checkpoint(LEGACY_FOLDER)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_optimizer_slots_are_ignored(tmp_path, golden_tensors, golden):
    tensors = dict(golden_tensors)
    for name in list(golden_tensors)[:3]:
        tensors[name + "/Adam"] = np.zeros_like(golden_tensors[name])
        tensors[name + "/Adam_1"] = np.zeros_like(golden_tensors[name])
    tensors["beta1_power"] = np.float32(0.5)
    tensors["beta2_power_1"] = np.float32(0.9)
    prefix = str(tmp_path / "cyclegan.model-7")
    _write_tf1_checkpoint(prefix, tensors)
    models, info = load_legacy_with_info("cyclegan_xhujoy", prefix)
    assert len(info["loaded"]) == 162 and len(info["ignored"]) == 8
    out = models["generator_a2b"](golden["test_A"]).numpy()
    assert np.abs(out - golden["fake_B"]).max() < 1e-4


def test_unknown_and_missing_tensors_are_refused(tmp_path, golden_tensors):
    tensors = dict(golden_tensors)
    del tensors["generatorB2A/g_r9_bn2/scale"]
    tensors["generatorA2B/g_pred_bn/scale"] = np.ones(3, np.float32)
    prefix = str(tmp_path / "broken")
    _write_tf1_checkpoint(prefix, tensors)
    with pytest.raises(LegacyCheckpointError) as error:
        load_legacy("cyclegan_xhujoy", prefix)
    message = str(error.value)
    assert "missing tensor generatorB2A/g_r9_bn2/scale" in message
    assert "unexpected checkpoint tensor generatorA2B/g_pred_bn/scale" in message


def test_shape_mismatch_is_refused(tmp_path, golden_tensors):
    tensors = dict(golden_tensors)
    tensors["discriminatorB/d_h1_conv/Conv/weights"] = np.zeros((4, 4, 8, 12), np.float32)
    prefix = str(tmp_path / "width")
    _write_tf1_checkpoint(prefix, tensors)
    with pytest.raises(LegacyCheckpointError, match="shape mismatch for discriminatorB/d_h1_conv"):
        load_legacy("cyclegan_xhujoy", prefix)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    prefix = str(tmp_path / "other")
    _write_tf1_checkpoint(prefix, {"generator/fc/weights": np.zeros((100, 16), np.float32)})
    with pytest.raises(LegacyCheckpointError, match="is not an xhujoy CycleGAN checkpoint"):
        load_legacy("cyclegan_xhujoy", prefix)


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="No TF checkpoint"):
        load_legacy("cyclegan_xhujoy", str(tmp_path))


def _unet_tf1_tensors(rng, ngf, ndf):
    """Random tensors under the original's U-Net and discriminator variable names, with the
    shapes of its graph (tf-slim kernels [kh, kw, in, out], transposed [kh, kw, out, in])."""
    tensors = {}

    def norm(scope, width):
        tensors[f"{scope}/scale"] = rng.normal(1.0, 0.1, width)
        tensors[f"{scope}/offset"] = rng.normal(0.0, 0.1, width)

    for generator in ("generatorA2B", "generatorB2A"):
        encoder = [3, ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * 5
        for i in range(1, 9):
            tensors[f"{generator}/g_e{i}_conv/Conv/weights"] = rng.normal(
                0, 0.2, (4, 4, encoder[i - 1], encoder[i])
            )
            norm(f"{generator}/" + ("instance_norm" if i == 1 else f"g_bn_e{i}"), encoder[i])
        decoder_in = [8 * ngf] + [16 * ngf] * 4 + [8 * ngf, 4 * ngf, 2 * ngf]
        decoder_out = [8 * ngf] * 4 + [4 * ngf, 2 * ngf, ngf, 3]
        for i in range(1, 9):
            tensors[f"{generator}/g_d{i}/Conv2d_transpose/weights"] = rng.normal(
                0, 0.2, (4, 4, decoder_out[i - 1], decoder_in[i - 1])
            )
            if i < 8:
                norm(f"{generator}/g_bn_d{i}", decoder_out[i - 1])
    for discriminator in ("discriminatorA", "discriminatorB"):
        widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1]
        names = ["d_h0_conv", "d_h1_conv", "d_h2_conv", "d_h3_conv", "d_h3_pred"]
        for i, name in enumerate(names):
            tensors[f"{discriminator}/{name}/Conv/weights"] = rng.normal(
                0, 0.2, (4, 4, widths[i], widths[i + 1])
            )
        for i in (1, 2, 3):
            norm(f"{discriminator}/d_bn{i}", widths[i + 1])
    return {name: value.astype(np.float32) for name, value in tensors.items()}


def test_unet_tf1_checkpoint_converts_to_the_original_outputs(tmp_path):
    """A TF1 U-Net checkpoint (the original's 114 names and shapes, random values) loads
    strictly, and the converted models reproduce an independent float64 computation of the
    original's graph (tests/cyclegan/unet_reference.py)."""
    from tests.cyclegan import unet_reference

    tensors = _unet_tf1_tensors(np.random.default_rng(3), ngf=2, ndf=2)
    assert len(tensors) == 2 * 46 + 2 * 11
    prefix = str(tmp_path / "cyclegan.model-5")
    _write_tf1_checkpoint(prefix, tensors)
    models, info = load_legacy_with_info("cyclegan_xhujoy", prefix)
    assert info["use_resnet"] is False and (info["ngf"], info["ndf"]) == (2, 2)
    assert len(info["loaded"]) == 114 and info["ignored"] == []

    reference_weights = {name: tf.constant(value, tf.float64) for name, value in tensors.items()}
    images = np.random.default_rng(4).uniform(-1, 1, (2, 256, 256, 3)).astype(np.float32)
    images64 = tf.constant(images, tf.float64)
    generators = (("generator_a2b", "generatorA2B"), ("generator_b2a", "generatorB2A"))
    discriminators = (("discriminator_a", "discriminatorA"), ("discriminator_b", "discriminatorB"))
    for model_name, scope in generators:
        ours = models[model_name](images, training=False).numpy()
        expected = unet_reference.unet_generator(images64, reference_weights, scope).numpy()
        print(f"{model_name}: max abs difference {np.abs(ours - expected).max():.2g}")
        assert np.abs(ours - expected).max() < 1e-4, model_name
    for model_name, scope in discriminators:
        ours = models[model_name](images).numpy()
        expected = unet_reference.discriminator(images64, reference_weights, scope).numpy()
        print(f"{model_name}: max abs difference {np.abs(ours - expected).max():.2g}")
        assert ours.shape == (2, 32, 32, 1)
        assert np.all(np.abs(ours - expected) <= 1e-4 + 1e-4 * np.abs(expected)), model_name
