"""tools/apply_generator.py and facegan_tf.training.apply: image models keep each input's
size (or the original's square size), IPCGAN writes every group, latent models their count."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from facegan_tf.export import ServingGenerator, load_serving_generator
from facegan_tf.training.apply import apply_generator, network_size


def _photos(folder, sizes, seed=0):
    """Smooth random photos of the given (height, width) sizes, PNG."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, (height, width) in enumerate(sizes):
        coarse = rng.integers(0, 255, (3, 3, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        path = os.path.join(folder, f"photo_{index}.png")
        image.save(path)
        paths.append(path)
    return paths


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory, randomize_weights):
    """A run folder as tools/train_cyclegan.py writes it (tiny widths, random weights)."""
    from facegan_tf.training.checkpointing import TrainingCheckpoint
    from facegan_tf.training.cyclegan import CycleGANConfig, build_cyclegan_models

    folder = str(tmp_path_factory.mktemp("cyclegan_run"))
    config = CycleGANConfig(ngf=4, ndf=4, num_blocks=1, load_size=18, fine_size=16)
    models = build_cyclegan_models(config)
    randomize_weights(ServingGenerator(models["generator_a2b"], "cyclegan"), seed=1)
    randomize_weights(ServingGenerator(models["generator_b2a"], "cyclegan"), seed=2)
    TrainingCheckpoint(folder, "cyclegan", config.to_dict(), **models).save(1)
    return folder, models


def test_network_size_keeps_the_aspect_ratio():
    assert network_size(40, 60, 16, 4, keep_aspect=True) == (12, 16)  # 16 * 40 / 60 = 10.7
    assert network_size(60, 20, 16, 4, keep_aspect=True) == (16, 4)
    assert network_size(5, 100, 16, 4, keep_aspect=True) == (4, 16)  # at least one multiple
    assert network_size(40, 60, 16, 4, keep_aspect=False) == (16, 16)


def test_keep_aspect_outputs_have_each_inputs_size(tmp_path, cyclegan_run):
    folder, _ = cyclegan_run
    sizes = [(40, 60), (30, 20), (16, 16)]
    paths = _photos(str(tmp_path / "in"), sizes)
    model, info = load_serving_generator(folder, "BtoA")
    assert info["image_size"] == 16 and info["source"] == "facegan_tf"
    result = apply_generator(model, info, str(tmp_path / "out"), str(tmp_path / "in"),
                             direction="BtoA", batch_size=2, progress=False)
    assert [row["input"] for row in result["rows"]] == paths
    for (height, width), row in zip(sizes, result["rows"]):
        (name,) = row["outputs"]
        assert name.startswith("BtoA_")
        assert _read(tmp_path / "out" / name).shape == (height, width, 3)
    with open(tmp_path / "out" / "apply_manifest.json", encoding="utf-8") as f:
        assert json.load(f)["options"]["keep_aspect"] is True
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "photo_0.png" in page and "BtoA_photo_2.png" in page


def test_square_mode_matches_the_original_test_behaviour(tmp_path, cyclegan_run):
    """--keep_aspect=false equals tools/test_cyclegan.py's translation (the original's
    resize to fine_size, output at fine_size)."""
    from facegan_tf.training.cyclegan_inference import translate_folder

    folder, models = cyclegan_run
    paths = _photos(str(tmp_path / "in"), [(40, 60), (24, 24)], seed=3)
    model, info = load_serving_generator(folder, "AtoB")
    apply_generator(model, info, str(tmp_path / "out"), str(tmp_path / "in"),
                    keep_aspect=False, progress=False)
    translate_folder(models["generator_a2b"], paths, str(tmp_path / "reference"), "AtoB", 16,
                     output_format="png", progress=False)
    for path in paths:
        name = "AtoB_" + os.path.splitext(os.path.basename(path))[0] + ".png"
        ours, reference = _read(tmp_path / "out" / name), _read(tmp_path / "reference" / name)
        assert ours.shape == (16, 16, 3)
        assert np.abs(ours.astype(int) - reference).max() <= 1


def test_ipcgan_writes_every_requested_group(tmp_path, tiny_model):
    """Square mode: each output equals the generator alone on the original's test loader
    (`load_test_image`) with one image, moving statistics outside the residual units."""
    from facegan_tf.layers import condition_maps
    from facegan_tf.training.ipcgan_inference import load_test_image

    model = tiny_model("ipcgan")
    paths = _photos(str(tmp_path / "in"), [(20, 30), (16, 16)], seed=4)
    result = apply_generator(model, {"image_size": 16}, str(tmp_path / "out"), paths[0],
                             age_groups=[0, 2], keep_aspect=False, progress=False)
    (row,) = result["rows"]
    assert row["outputs"] == ["photo_0_group0.png", "photo_0_group2.png"]
    image = load_test_image(paths[0], 16)[None]
    for group, name in zip((0, 2), row["outputs"]):
        expected = model.generator(
            [image, condition_maps(np.array([group]), 3, 16, 16)], training=False
        ).numpy()[0]
        expected = np.clip(np.round((expected + 1) * 127.5), 0, 255)
        assert np.abs(_read(tmp_path / "out" / name).astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="age_groups must lie in 0..2"):
        apply_generator(model, {"image_size": 16}, str(tmp_path / "bad"), paths[0],
                        age_groups=[3], progress=False)


@pytest.mark.parametrize("kind", ["dcgan", "cgan"])
def test_latent_models_write_num_samples_of_the_class(tmp_path, tiny_model, kind):
    from facegan_tf.training.dcgan_inference import draw_z

    model = tiny_model(kind)
    result = apply_generator(model, {"z_distribution": "uniform"}, str(tmp_path), num_samples=5,
                             class_label=2, batch_size=2, seed=7, progress=False)
    names = [row["outputs"][0] for row in result["rows"]]
    suffix = "_class2" if kind == "cgan" else ""
    assert names == [f"sample_{i:04d}{suffix}.png" for i in range(5)]
    z = draw_z(np.random.default_rng(7), 5, 8, "uniform")
    if kind == "cgan":
        expected = model.generator(z, np.full([5], 2, np.int32), training=False).numpy()
        other = model.generator(z, np.zeros([5], np.int32), training=False).numpy()
        assert np.abs(expected - other).max() > 1e-2
    else:
        expected = model.generator(z, training=False).numpy()
    for name, image in zip(names, expected):
        pixels = np.clip(np.round((image + 1) * 127.5), 0, 255)
        assert np.abs(_read(tmp_path / name).astype(int) - pixels).max() <= 1


def test_cgan_run_folder_is_loaded(tmp_path, randomize_weights):
    from facegan_tf.training.cgan import ConditionalGANConfig, build_conditional_models
    from facegan_tf.training.checkpointing import TrainingCheckpoint

    config = ConditionalGANConfig(model="cdcgan", num_classes=3, image_size=16, z_dim=8,
                                  fc_channels=16, g_channels=4, d_channels=4)
    models = build_conditional_models(config)
    randomize_weights(ServingGenerator(models["generator"], "cgan"), seed=5)
    TrainingCheckpoint(str(tmp_path), "cgan", config.to_dict(), **models).save(1)
    model, info = load_serving_generator(str(tmp_path))
    assert info["kind"] == "cgan" and model.num_classes == 3
    z = np.ones((1, 8), np.float32)
    labels = np.array([1], np.int32)
    expected = models["generator"](z, labels, training=False).numpy()
    assert np.abs(np.asarray(model([z, labels])) - expected).max() < 1e-6


# ----------------------------------------------------------------------------- CLI
def test_cli_apply_and_export(tmp_path, tool, cyclegan_run):
    folder, _ = cyclegan_run
    _photos(str(tmp_path / "in"), [(40, 60), (30, 20)], seed=6)
    result = tool("apply_generator", f"--model={folder}", f"--source={tmp_path / 'in'}",
                  f"--output_dir={tmp_path / 'out'}", "--keep_aspect=false", "--batch_size=2")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["written"] == 2 and summary["kind"] == "cyclegan"
    assert "2/2" in result.stderr  # the progress bar
    assert _read(tmp_path / "out" / "AtoB_photo_0.png").shape == (16, 16, 3)
    assert (tmp_path / "out" / "index.html").is_file()
    result = tool("export_generator", f"--model={folder}", f"--output_dir={tmp_path / 'exp'}",
                  "--formats=keras,tflite", "--direction=BtoA")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "export [" in result.stderr and "3/3" in result.stderr  # one step per file
    with open(tmp_path / "exp" / "export_manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["source"]["direction"] == "BtoA"
    assert sorted(manifest["files"]) == ["keras", "tflite_float", "tflite_uint8"]


def test_cli_errors_are_one_line(tmp_path, tool, cyclegan_run):
    folder, _ = cyclegan_run
    result = tool("apply_generator", f"--model={tmp_path / 'nothing'}", "--source=x",
                  f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --model")
    assert "Traceback" not in result.stderr
    result = tool("apply_generator", f"--model={folder}", f"--source={tmp_path / 'missing'}",
                  f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --source") and "missing" in last
    assert not (tmp_path / "out").exists()
