"""1- and 3-channel models through every tool that reads or writes images.

The grayscale model has the channel layout of ``train_cyclegan --demo`` at tiny widths. Every
expected output is computed here from PIL (``convert("L")``, bilinear resize) and the Keras
generator alone, not through the conversion code under test.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facegan_tf.export import (
    ONNX_INSTALL_HINT,
    export_generator,
    load_serving_generator,
    onnx_available,
)
from facegan_tf.training.apply import apply_generator

HAVE_ONNX = onnx_available()
FORMATS = ["keras", "saved_model", "tflite"] + (["onnx"] if HAVE_ONNX else [])
#: (file name, size of a photo) of the grayscale and the RGB test photo; with image_size 16
#: and size multiple 4 keep-aspect runs the network at 12 x 16 and 16 x 12.
PHOTOS = {"gray.png": ((20, 28), "L"), "color.png": ((24, 18), "RGB")}
NETWORK_SIZE = {"gray.png": (12, 16), "color.png": (16, 12)}


def _write_photos(folder, names=tuple(PHOTOS), seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        (height, width), mode = PHOTOS[name]
        coarse = rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        if mode == "RGB":  # channels clearly apart, so luma differs from any single channel
            pixels = np.asarray(image).copy()
            pixels[..., 2] = 255 - pixels[..., 0]
            image = Image.fromarray(pixels)
        image.convert(mode).save(os.path.join(folder, name))
    return folder


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    return _write_photos(str(tmp_path_factory.mktemp("photos")))


@pytest.fixture(scope="session")
def gray_export(tmp_path_factory, gray_run):
    """The grayscale run exported once in every format (int8 included)."""
    folder, _ = gray_run
    model, info = load_serving_generator(folder)
    target = str(tmp_path_factory.mktemp("gray_export"))
    manifest = export_generator(model, target, FORMATS, int8=True, info=info)
    return target, manifest


def _reference(generator, photo, network_size, out_size, mode):
    """PIL conversion to ``mode`` and bilinear resize, the generator in inference mode,
    (y + 1) * 127.5 rounded, PIL bilinear resize back: uint8 [H, W] or [H, W, 3]."""
    image = Image.open(photo).convert(mode).resize(network_size[::-1], Image.BILINEAR)
    x = np.asarray(image, np.float64) / 127.5 - 1.0
    x = x.reshape(1, *network_size, -1).astype(np.float32)
    y = generator(tf.constant(x), training=False).numpy()[0]
    pixels = np.clip(np.round((y.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    return np.asarray(Image.fromarray(pixels).resize(out_size[::-1], Image.BILINEAR))


# ----------------------------------------------------------------------------- the report
def test_apply_cli_on_the_demo_layout_with_grayscale_pngs(tmp_path, tool, gray_run):
    """``apply_generator --model=<demo>/checkpoint --source=<folder of 1-channel PNGs>``
    (reported crash: PIL "Cannot handle this data type: (1, 1, 1), |u1")."""
    folder, models = gray_run
    source = _write_photos(str(tmp_path / "testA"), ["gray.png"])
    result = tool("apply_generator", f"--model={folder}", f"--source={source}",
                  f"--output_dir={tmp_path / 'out'}", "--noprogress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["written"] == 1
    with Image.open(tmp_path / "out" / "AtoB_gray.png") as image:
        assert image.mode == "L" and image.size == (28, 20)
        written = np.asarray(image)
    expected = _reference(models["generator_a2b"], os.path.join(source, "gray.png"),
                          NETWORK_SIZE["gray.png"], (20, 28), "L")
    assert np.abs(written.astype(int) - expected).max() <= 1


# ----------------------------------------------------------------------------- every path
PATHS = [
    ("run", None),
    ("keras", "generator.keras"),
    ("saved_model", "saved_model"),
    ("tflite", "generator.tflite"),
    ("tflite_uint8", "generator_uint8.tflite"),
    ("tflite_int8", "generator_int8.tflite"),
    pytest.param("onnx", "generator.onnx",
                 marks=pytest.mark.skipif(not HAVE_ONNX, reason=ONNX_INSTALL_HINT)),
    pytest.param("onnx_uint8", "generator_uint8.onnx",
                 marks=pytest.mark.skipif(not HAVE_ONNX, reason=ONNX_INSTALL_HINT)),
]


@pytest.mark.parametrize("label, name", PATHS)
def test_grayscale_model_applies_to_gray_and_rgb_photos_from_every_format(
    tmp_path, gray_run, gray_export, photos, label, name
):
    """Outputs are 8-bit grayscale files at each input's size; an RGB photo goes in as its
    PIL "L" luma. Float and uint8 files match the Keras generator within one level; the
    int8 file runs at its fixed 16 x 16 side (only mode and size are checked)."""
    run_folder, models = gray_run
    export_folder, _ = gray_export
    model, info = load_serving_generator(
        run_folder if name is None else os.path.join(export_folder, name)
    )
    assert model.input_channels == 1
    result = apply_generator(model, info, str(tmp_path / "out"), photos, progress=False)
    assert [os.path.basename(row["input"]) for row in result["rows"]] == sorted(PHOTOS)
    for row in result["rows"]:
        photo = os.path.basename(row["input"])
        (height, width), _ = PHOTOS[photo]
        with Image.open(tmp_path / "out" / row["outputs"][0]) as image:
            assert (image.mode, image.size) == ("L", (width, height)), photo
            written = np.asarray(image).astype(int)
        if label == "tflite_int8":
            continue
        expected = _reference(models["generator_a2b"], row["input"], NETWORK_SIZE[photo],
                              (height, width), "L")
        assert np.abs(written - expected).max() <= 1, photo


def test_square_mode_equals_test_cyclegan_for_an_rgb_photo_on_a_gray_model(
    tmp_path, gray_run, photos
):
    """apply --keep_aspect=false and test_cyclegan convert the photo the same way."""
    from facegan_tf.training.cyclegan_inference import translate_folder

    folder, models = gray_run
    model, info = load_serving_generator(folder)
    apply_generator(model, info, str(tmp_path / "apply"), photos, keep_aspect=False,
                    progress=False)
    photo = os.path.join(photos, "color.png")
    translate_folder(models["generator_a2b"], [photo], str(tmp_path / "test"), "AtoB", 16,
                     input_channels=1, output_format="png", progress=False)
    with Image.open(tmp_path / "apply" / "AtoB_color.png") as ours, \
            Image.open(tmp_path / "test" / "AtoB_color.png") as theirs:
        assert ours.mode == theirs.mode == "L" and ours.size == (16, 16)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    expected = _reference(models["generator_a2b"], photo, (16, 16), (16, 16), "L")
    with Image.open(tmp_path / "apply" / "AtoB_color.png") as ours:
        assert np.abs(np.asarray(ours).astype(int) - expected).max() <= 1


# ----------------------------------------------------------------------------- signatures
def _pil_luma(pixels):
    return np.stack([np.asarray(Image.fromarray(p).convert("L"))[..., None] for p in pixels])


def test_exported_signatures_take_the_models_channels_and_runners_convert(gray_export):
    """Manifest and signatures say 1 channel in, 1 out; the .keras model and the TFLite/ONNX
    runners given RGB pixels answer exactly as for PIL "L" pixels, given RGB floats as for
    0.299 R + 0.587 G + 0.114 B (within 1e-5, the float32 graph-versus-eager bound of
    docs/export.md; a wrong conversion moves outputs by ~0.1)."""
    import keras

    from facegan_tf.export import run_onnx, run_tflite

    folder, manifest = gray_export
    assert (manifest["input_channels"], manifest["output_channels"]) == (1, 1)
    assert "[N, H, W, 1]" in manifest["signature"]["inputs"]["images"]
    assert manifest["signature"]["outputs"]["generated"].startswith("[N, H, W, 1]")
    rgb = np.random.default_rng(5).integers(0, 256, (2, 12, 8, 3), dtype=np.uint8)
    gray = _pil_luma(rgb)
    rgb_float = rgb.astype(np.float32) / 127.5 - 1
    luma_float = (rgb_float.astype(np.float64) @ np.array([[0.299], [0.587], [0.114]]))
    luma_float = luma_float.astype(np.float32)

    loaded = tf.saved_model.load(os.path.join(folder, "saved_model"))
    for key, dtype in (("serving_float", tf.float32), ("serving_uint8", tf.uint8)):
        (spec,) = loaded.signatures[key].structured_input_signature[1].values()
        assert spec.shape.as_list() == [None, None, None, 1] and spec.dtype == dtype
    out = loaded.signatures["serving_uint8"](images=tf.constant(gray))["generated"].numpy()
    assert out.shape == (2, 12, 8, 1) and out.dtype == np.uint8

    model = keras.models.load_model(os.path.join(folder, "generator.keras"))
    np.testing.assert_array_equal(np.asarray(model(rgb)), np.asarray(model(gray)))
    np.testing.assert_allclose(np.asarray(model(rgb_float)), np.asarray(model(luma_float)),
                               atol=1e-5)
    runners = [(run_tflite, "tflite")] + ([(run_onnx, "onnx")] if HAVE_ONNX else [])
    for run, extension in runners:
        uint8_file = os.path.join(folder, f"generator_uint8.{extension}")
        float_file = os.path.join(folder, f"generator.{extension}")
        expected = run(uint8_file, {"images": gray})
        assert expected.shape == (2, 12, 8, 1)
        np.testing.assert_array_equal(run(uint8_file, {"images": rgb}), expected)
        np.testing.assert_allclose(run(float_file, {"images": rgb_float}),
                                   run(float_file, {"images": luma_float}), atol=1e-5)
    int8 = os.path.join(folder, "generator_int8.tflite")
    one = rgb_float[:1, :8, :8]
    one = np.asarray(tf.image.resize(one, (16, 16)))
    luma = (one.astype(np.float64) @ np.array([[0.299], [0.587], [0.114]])).astype(np.float32)
    np.testing.assert_allclose(run_tflite(int8, {"images": one}),
                               run_tflite(int8, {"images": luma}), atol=1e-5)


def test_rgb_model_replicates_a_grayscale_input(tiny_model):
    model = tiny_model("cyclegan")
    gray = np.random.default_rng(6).integers(0, 256, (1, 8, 12, 1), dtype=np.uint8)
    np.testing.assert_array_equal(
        np.asarray(model(gray)), np.asarray(model(np.repeat(gray, 3, axis=-1)))
    )


# ----------------------------------------------------------------------------- 1 -> 3
@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    from .conftest import save_cyclegan_run

    folder = str(tmp_path_factory.mktemp("mixed") / "checkpoint")
    return folder, save_cyclegan_run(folder, seed=21, input_nc=1, output_nc=3)


@pytest.mark.parametrize("direction, mode", [("AtoB", "RGB"), ("BtoA", "L")])
def test_mixed_channel_model_writes_each_directions_channels(
    tmp_path, mixed_run, photos, direction, mode
):
    """input_nc=1, output_nc=3: A->B takes luma and writes RGB, B->A takes RGB (a gray
    photo replicated) and writes grayscale; the manifest facts say so."""
    from facegan_tf.export import model_facts

    folder, models = mixed_run
    model, info = load_serving_generator(folder, direction)
    assert model_facts(model) == {
        "input_channels": 1 if direction == "AtoB" else 3,
        "output_channels": 3 if direction == "AtoB" else 1,
    }
    apply_generator(model, info, str(tmp_path), photos, direction=direction, progress=False)
    key = "generator_a2b" if direction == "AtoB" else "generator_b2a"
    for photo, ((height, width), _) in PHOTOS.items():
        with Image.open(tmp_path / f"{direction}_{photo}") as image:
            assert (image.mode, image.size) == (mode, (width, height))
            written = np.asarray(image).astype(int)
        expected = _reference(models[key], os.path.join(photos, photo), NETWORK_SIZE[photo],
                              (height, width), "L" if direction == "AtoB" else "RGB")
        assert np.abs(written - expected).max() <= 1


# ----------------------------------------------------------------------------- other kinds
def test_ipcgan_ages_a_grayscale_photo_into_rgb(tmp_path, tiny_model, photos):
    """IPCGAN is RGB: a grayscale photo goes in replicated; outputs and the copy are RGB."""
    from facegan_tf.training.ipcgan_inference import age_folder

    model = tiny_model("ipcgan")
    gray = os.path.join(photos, "gray.png")
    result = age_folder(model.generator, [gray], str(tmp_path / "aged"), mode="clean",
                        target_groups=(0, 2), image_size=16, progress=False)
    assert len(result["written"]) == 3
    for path in result["written"]:
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (16, 16)
    applied = apply_generator(model, {"image_size": 16}, str(tmp_path / "applied"), gray,
                              age_groups=[1], progress=False)
    with Image.open(tmp_path / "applied" / applied["rows"][0]["outputs"][0]) as image:
        assert image.mode == "RGB" and image.size == (28, 20)


@pytest.mark.parametrize("kind", ["dcgan", "cgan"])
def test_one_channel_latent_models_write_grayscale_files_and_gray_grids(
    tmp_path, randomize_weights, kind
):
    """A 1-channel DCGAN/cGAN: apply writes 'L' samples equal to G(z); the test_dcgan grid
    shows each sample as gray RGB (R = G = B = the sample)."""
    from facegan_tf.export import ServingGenerator
    from facegan_tf.networks.dcgan import ConditionalDCGANGenerator, DCGANGenerator
    from facegan_tf.training.dcgan_inference import draw_z, sample_dcgan

    widths = {"z_dim": 8, "fc_channels": 16, "channels": 4, "image_size": 16,
              "image_channels": 1}
    if kind == "cgan":
        generator = ConditionalDCGANGenerator(num_classes=2, **widths)
    else:
        generator = DCGANGenerator(**widths)
    model = ServingGenerator(generator, kind, 3, 16)
    model.build_generator()
    randomize_weights(model, seed=8)
    assert model.output_channels == 1
    assert "16, 16, 1]" in model.describe()["outputs"]["generated"]
    apply_generator(model, {"z_distribution": "uniform"}, str(tmp_path / "apply"),
                    num_samples=2, class_label=1, seed=3, progress=False)
    z = draw_z(np.random.default_rng(3), 2, 8, "uniform")
    if kind == "cgan":
        expected = generator(z, np.ones([2], np.int32), training=False).numpy()
    else:
        expected = generator(z, training=False).numpy()
    suffix = "_class1" if kind == "cgan" else ""
    for index in range(2):
        with Image.open(tmp_path / "apply" / f"sample_{index:04d}{suffix}.png") as image:
            assert image.mode == "L" and image.size == (16, 16)
            pixels = np.clip(np.round((expected[index, ..., 0] + 1) * 127.5), 0, 255)
            assert np.abs(np.asarray(image).astype(int) - pixels).max() <= 1
    if kind == "dcgan":
        record = sample_dcgan(generator, {"z_dim": 8, "z_distribution": "uniform",
                                          "checkpoint": "tiny"}, str(tmp_path / "test"),
                              sample_H=1, sample_W=2, num_intermediate=0, seed=3)
        with Image.open(record["random_grid"]) as image:
            grid = np.asarray(image)
        assert grid.shape[-1] == 3
        np.testing.assert_array_equal(grid[..., 0], grid[..., 1])
        np.testing.assert_array_equal(grid[..., 0], grid[..., 2])


# ----------------------------------------------------------------------------- helpers
def test_channel_conversion_reading_resizing_and_writing(tmp_path):
    """uint8 RGB -> 1 equals PIL "L" exactly; floats get the ITU-R 601 weighted sum; 1 -> 3
    replicates; grayscale arrays resize and save as 'L' files, RGB as 'RGB'."""
    from facegan_tf.data.images import (
        convert_channels,
        read_image,
        resize_uint8,
        save_image,
    )

    rgb = np.random.default_rng(7).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(convert_channels(rgb, 1)[..., 0], luma)
    signed = rgb.astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(
        convert_channels(signed, 1)[..., 0],
        0.299 * signed[..., 0] + 0.587 * signed[..., 1] + 0.114 * signed[..., 2],
        atol=1e-6,
    )
    np.testing.assert_array_equal(convert_channels(luma[..., None], 3),
                                  np.stack([luma] * 3, axis=-1))
    with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\)"):
        convert_channels(np.zeros((4, 4, 2), np.uint8), 1)

    Image.fromarray(rgb).save(tmp_path / "photo.png")
    np.testing.assert_array_equal(read_image(str(tmp_path / "photo.png"), 1)[..., 0], luma)
    small = resize_uint8(luma[..., None], 20, 30)
    assert small.shape == (20, 30, 1)
    np.testing.assert_array_equal(
        small[..., 0], np.asarray(Image.fromarray(luma).resize((30, 20), Image.BILINEAR))
    )
    save_image(str(tmp_path / "gray.png"), small)
    save_image(str(tmp_path / "color.png"), rgb)
    with Image.open(tmp_path / "gray.png") as gray, Image.open(tmp_path / "color.png") as color:
        assert (gray.mode, gray.size, color.mode) == ("L", (30, 20), "RGB")
        np.testing.assert_array_equal(np.asarray(gray), small[..., 0])
