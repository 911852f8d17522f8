"""Every export format reloads and reproduces the Keras generator (tiny models, all families)."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.export import (
    MANIFEST_FILE,
    ONNX_INSTALL_HINT,
    ServingGenerator,
    demo_inputs,
    export_generator,
    load_serving_generator,
    onnx_available,
    run_onnx,
    run_tflite,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
LEGACY_CYCLEGAN = os.path.join(FIXTURES, "cyclegan_xhujoy_resnet")
HAVE_ONNX = onnx_available()
ALL = ["keras", "saved_model", "tflite"] + (["onnx"] if HAVE_ONNX else [])
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason=ONNX_INSTALL_HINT)


def smooth_images(rng, count, height, width, channels=3):
    coarse = rng.uniform(-1, 1, (count, 3, 3, channels)).astype(np.float32)
    return tf.image.resize(coarse, (height, width), method="bicubic").numpy().clip(-1, 1)


@pytest.fixture(scope="module")
def cyclegan_export(tmp_path_factory, tiny_model):
    model = tiny_model("cyclegan")
    folder = str(tmp_path_factory.mktemp("cyclegan_export"))
    manifest = export_generator(model, folder, ALL, image_size=16, int8=True)
    return model, folder, manifest


def _reference_cyclegan(model, images):
    """The wrapped network itself, called as in training code (float in [-1, 1])."""
    return model.generator(tf.constant(images), training=False).numpy()


def test_manifest_lists_every_file_with_its_sha256(cyclegan_export):
    _, folder, manifest = cyclegan_export
    with open(os.path.join(folder, MANIFEST_FILE), encoding="utf-8") as f:
        assert json.load(f) == manifest
    assert manifest["kind"] == "cyclegan" and manifest["size_multiple"] == 4
    assert "uint8" in manifest["dtype_rule"] and "[-1, 1]" in manifest["dtype_rule"]
    for key in ("keras", "tflite_float", "tflite_uint8", "tflite_int8"):
        entry = manifest["files"][key]
        with open(os.path.join(folder, entry["path"]), "rb") as f:
            assert entry["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert os.path.isfile(os.path.join(folder, "saved_model", "saved_model.pb"))


def test_keras_file_reloads_with_both_dtypes_and_a_non_square_size(cyclegan_export):
    model, folder, _ = cyclegan_export
    reloaded = keras.models.load_model(os.path.join(folder, "generator.keras"))
    images = smooth_images(np.random.default_rng(0), 2, 20, 28)
    expected = _reference_cyclegan(model, images)
    out = np.asarray(reloaded(images))
    assert out.shape == (2, 20, 28, 3) and out.dtype == np.float32
    assert np.abs(out - expected).max() < 1e-6
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)
    out_uint8 = np.asarray(reloaded(pixels))
    assert out_uint8.dtype == np.uint8
    expected_uint8 = _reference_cyclegan(model, pixels.astype(np.float32) / 127.5 - 1)
    rounded = np.clip(np.round((expected_uint8 + 1) * 127.5), 0, 255)
    assert np.abs(out_uint8.astype(int) - rounded).max() <= 1


def test_saved_model_signatures(cyclegan_export):
    model, folder, _ = cyclegan_export
    loaded = tf.saved_model.load(os.path.join(folder, "saved_model"))
    assert {"serving_default", "serving_float", "serving_uint8"} <= set(loaded.signatures)
    images = smooth_images(np.random.default_rng(1), 1, 24, 16)
    out = loaded.signatures["serving_float"](images=tf.constant(images))["generated"].numpy()
    # Graph vs eager float rounding (oneDNN's kernels differ by up to ~2e-6 here).
    assert np.abs(out - _reference_cyclegan(model, images)).max() < 1e-5
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)
    out = loaded.signatures["serving_uint8"](images=tf.constant(pixels))["generated"].numpy()
    expected = _reference_cyclegan(model, pixels.astype(np.float32) / 127.5 - 1)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round((expected + 1) * 127.5)).max() <= 1


def test_tflite_float_and_uint8_with_dynamic_size(cyclegan_export):
    model, folder, _ = cyclegan_export
    images = smooth_images(np.random.default_rng(2), 2, 20, 12)
    out = run_tflite(os.path.join(folder, "generator.tflite"), {"images": images})
    assert out.shape == (2, 20, 12, 3)
    assert np.abs(out - _reference_cyclegan(model, images)).max() < 1e-4
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)
    out = run_tflite(os.path.join(folder, "generator_uint8.tflite"), {"images": pixels})
    expected = _reference_cyclegan(model, pixels.astype(np.float32) / 127.5 - 1)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round((expected + 1) * 127.5)).max() <= 1


def test_int8_is_close_to_float(cyclegan_export):
    """int8 bound (docs/export.md): correlation with float > 0.9, mean error < 0.1 on inputs
    like the calibration images (int8 ranges come from them). The file is really quantised
    (its error is far above float32 noise), and the manifest's ``error_vs_float`` is the
    error recomputed here."""
    model, folder, manifest = cyclegan_export
    int8_path = os.path.join(folder, "generator_int8.tflite")
    images = demo_inputs(model, 1, 16, seed=3)[0]
    out = run_tflite(int8_path, {"images": images})
    expected = _reference_cyclegan(model, images)
    assert out.shape == expected.shape
    assert np.corrcoef(out.ravel(), expected.ravel())[0, 1] > 0.9
    assert 1e-3 < np.abs(out - expected).mean() < 0.1

    # The manifest's figures: int8 against the float TFLite file on 2 demo inputs (seed 2).
    checks = demo_inputs(model, 2, 16, seed=2)[0]
    int8_out = np.concatenate([run_tflite(int8_path, {"images": x[None]}) for x in checks])
    float_out = run_tflite(os.path.join(folder, "generator.tflite"), {"images": checks})
    assert np.abs(float_out - _reference_cyclegan(model, checks)).max() < 1e-5
    difference = np.abs(int8_out - float_out)
    error = manifest["files"]["tflite_int8"]["error_vs_float"]
    assert error["inputs"] == "2 demo inputs (seed 2)"
    assert error["max_abs"] == pytest.approx(float(difference.max()), rel=1e-6)
    assert error["mean_abs"] == pytest.approx(float(difference.mean()), rel=1e-6)
    assert error["correlation"] == pytest.approx(
        float(np.corrcoef(int8_out.ravel(), float_out.ravel())[0, 1]), rel=1e-6
    )
    assert error["correlation"] > 0.9 and error["mean_abs"] < 0.1


@needs_onnx
def test_onnx_float_and_uint8(cyclegan_export):
    model, folder, _ = cyclegan_export
    images = smooth_images(np.random.default_rng(4), 2, 12, 20)
    out = run_onnx(os.path.join(folder, "generator.onnx"), {"images": images})
    assert np.abs(out - _reference_cyclegan(model, images)).max() < 1e-4
    pixels = np.round((images + 1) * 127.5).astype(np.uint8)
    out = run_onnx(os.path.join(folder, "generator_uint8.onnx"), {"images": pixels})
    expected = _reference_cyclegan(model, pixels.astype(np.float32) / 127.5 - 1)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round((expected + 1) * 127.5)).max() <= 1


def test_existing_export_is_not_overwritten(cyclegan_export):
    model, folder, _ = cyclegan_export
    with open(os.path.join(folder, "generator.tflite"), "rb") as f:
        before = f.read()
    with pytest.raises(ValueError, match="already holds an export"):
        export_generator(model, folder, ["tflite"])
    with open(os.path.join(folder, "generator.tflite"), "rb") as f:
        assert f.read() == before


def test_exported_keras_file_is_accepted_as_model(cyclegan_export):
    model, folder, _ = cyclegan_export
    reloaded, info = load_serving_generator(os.path.join(folder, "generator.keras"))
    assert isinstance(reloaded, ServingGenerator) and info["kind"] == "cyclegan"
    assert reloaded.size_multiple == 4 and info["source"] == "keras"


def test_bad_formats_and_sizes_are_refused(tmp_path, tiny_model):
    model = tiny_model("cyclegan")
    with pytest.raises(ValueError, match="Received: formats=keras,png"):
        export_generator(model, str(tmp_path), ["keras", "png"])
    with pytest.raises(ValueError, match="multiple of 4"):
        export_generator(model, str(tmp_path), ["keras"], image_size=18)


def _check_runtimes(folder, inputs, expected):
    out = run_tflite(os.path.join(folder, "generator.tflite"), inputs)
    assert np.abs(out - expected).max() < 1e-4
    if HAVE_ONNX:
        out = run_onnx(os.path.join(folder, "generator.onnx"), inputs)
        assert np.abs(out - expected).max() < 1e-4


# ----------------------------------------------------------------------------- IPCGAN
def test_ipcgan_per_image_statistics_equal_single_image_calls(tiny_model):
    """A batch through the wrapper gives, per row, the generator's own output for that image
    alone (residual units normalise over one image, as the original with batch 1)."""
    from facegan_tf.layers import condition_maps
    from facegan_tf.networks.ipcgan import signed_to_generator_input

    model = tiny_model("ipcgan")
    images = smooth_images(np.random.default_rng(5), 3, 16, 20)
    groups = np.array([0, 2, 1], np.int32)
    batch = np.asarray(model([images, groups]))
    for i in range(3):
        condition = condition_maps(groups[i : i + 1], 3, 16, 20)
        one = model.generator(
            [signed_to_generator_input(images[i : i + 1]), condition], training=False
        ).numpy()
        assert np.abs(batch[i : i + 1] - one).max() < 1e-5
    assert np.abs(batch[0] - batch[1]).max() > 1e-3


def test_ipcgan_formats_match(tmp_path, tiny_model):
    model = tiny_model("ipcgan")
    manifest = export_generator(model, str(tmp_path), ALL, image_size=16)
    assert "age_group" in manifest["signature"]["inputs"]
    images = smooth_images(np.random.default_rng(6), 2, 16, 12)
    groups = np.array([2, 0], np.int32)
    expected = np.asarray(model([images, groups]))
    inputs = {"images": images, "age_group": groups}
    reloaded = keras.models.load_model(os.path.join(tmp_path, "generator.keras"))
    assert np.abs(np.asarray(reloaded([images, groups])) - expected).max() < 1e-6
    loaded = tf.saved_model.load(os.path.join(tmp_path, "saved_model"))
    out = loaded.signatures["serving_float"](
        images=tf.constant(images), age_group=tf.constant(groups)
    )["generated"].numpy()
    assert np.abs(out - expected).max() < 1e-5  # graph vs eager float rounding
    _check_runtimes(str(tmp_path), inputs, expected)


# ----------------------------------------------------------------------------- DCGAN / cGAN
@pytest.mark.parametrize("kind", ["dcgan", "cgan"])
def test_latent_generators_match_in_every_format(tmp_path, tiny_model, kind):
    model = tiny_model(kind)
    formats = ["saved_model", "tflite"] + (["onnx"] if HAVE_ONNX else [])
    manifest = export_generator(model, str(tmp_path), formats)
    assert manifest["image_size"] == 16
    z = np.random.default_rng(7).standard_normal((3, 8)).astype(np.float32)
    inputs = {"z": z}
    if kind == "cgan":
        labels = np.array([0, 2, 1], np.int32)
        inputs["labels"] = labels
        expected = model.generator(z, labels, training=False).numpy()
    else:
        expected = model.generator(z, training=False).numpy()
    assert expected.std() > 0.05
    loaded = tf.saved_model.load(os.path.join(tmp_path, "saved_model"))
    signature_inputs = {k: tf.constant(v) for k, v in inputs.items()}
    out = loaded.signatures["serving_float"](**signature_inputs)["generated"].numpy()
    assert np.abs(out - expected).max() < 1e-5
    out = loaded.signatures["serving_uint8"](**signature_inputs)["generated"].numpy()
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.round((expected + 1) * 127.5)).max() <= 1
    _check_runtimes(str(tmp_path), inputs, expected)


# ----------------------------------------------------------------------------- legacy golden
def test_legacy_cyclegan_export_reproduces_the_original(tmp_path):
    """xhujoy checkpoint -> TFLite (and ONNX): outputs equal the original graph's fake_B."""
    golden = dict(np.load(os.path.join(LEGACY_CYCLEGAN, "golden.npz")))
    model, info = load_serving_generator(os.path.join(LEGACY_CYCLEGAN, "checkpoint"), "AtoB")
    assert isinstance(model, ServingGenerator) and info["source"] == "xhujoy_tf1"
    assert info["image_size"] == 64
    formats = ["keras", "tflite"] + (["onnx"] if HAVE_ONNX else [])
    export_generator(model, str(tmp_path), formats, info=info)
    reloaded, reloaded_info = load_serving_generator(os.path.join(tmp_path, "generator.keras"))
    assert reloaded_info["image_size"] == 64  # the training side travels with the file
    out = np.asarray(reloaded(golden["test_A"]))
    assert np.abs(out - golden["fake_B"]).max() < 1e-4
    out = run_tflite(os.path.join(tmp_path, "generator.tflite"), {"images": golden["test_A"]})
    assert np.abs(out - golden["fake_B"]).max() < 1e-4
    if HAVE_ONNX:
        out = run_onnx(os.path.join(tmp_path, "generator.onnx"), {"images": golden["test_A"]})
        assert np.abs(out - golden["fake_B"]).max() < 1e-4


def test_unknown_model_path_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No generator found"):
        load_serving_generator(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_serving_generator(str(tmp_path / "missing"))
