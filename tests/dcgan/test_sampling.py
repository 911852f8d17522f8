"""tools/test_dcgan.py and tools/convert_tf1_checkpoint.py --kind=dcgan_sualab, end to end."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facegan_tf.data.images import to_uint8
from facegan_tf.migrate import load_legacy
from facegan_tf.migrate.dcgan_sualab import convert_dcgan_sualab
from facegan_tf.training.dcgan_inference import (
    detect_checkpoint_kind,
    load_dcgan_generator,
    load_real_images,
    sample_dcgan,
)
from facegan_tf.training.gan_metrics import make_image_metrics

CELL = 64 + 2  # grid cell of a 64 x 64 image with the 2-pixel padding


def grid_cell(path, row, col, size=64):
    grid = np.asarray(Image.open(path).convert("RGB"))
    top, left = 2 + row * (size + 2), 2 + col * (size + 2)
    return grid[top : top + size, left : left + size]


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory, run_cli, sualab_run_dir, json_line):
    output = tmp_path_factory.mktemp("converted") / "sualab"
    result = run_cli(
        "convert_tf1_checkpoint",
        "--kind=dcgan_sualab",
        f"--tf1_checkpoint={sualab_run_dir}",
        f"--output_dir={output}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json_line(result.stdout)
    assert record["kind"] == "dcgan_sualab" and len(record["loaded"]) == 48
    return output


def test_converted_checkpoint_samples_match_the_legacy_generator(
    converted_dir, run_cli, json_line, tmp_path, sualab_run_dir
):
    test_dir = tmp_path / "test"
    result = run_cli(
        "test_dcgan",
        f"--checkpoint_dir={converted_dir}",
        f"--test_dir={test_dir}",
        "--sample_H=2",
        "--sample_W=3",
        "--num_intermediate=3",
        "--seed=7",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json_line(result.stdout)
    assert record["source"] == "converted" and record["z_distribution"] == "uniform"
    with open(test_dir / "metrics.json", encoding="utf-8") as f:
        assert json.load(f)["source"] == "converted"
    assert "sample_image_random.png" in (test_dir / "index.html").read_text(encoding="utf-8")
    grid = Image.open(test_dir / "sample_image_random.png")
    strip = Image.open(test_dir / "sample_image_interpolate.png")
    assert grid.size == (3 * CELL + 2, 2 * CELL + 2)
    assert strip.size == (5 * CELL + 2, CELL + 2)  # z_a, 3 intermediate points, z_b
    # The grid holds G(z) of the TF1 weights (loaded independently of the converted files)
    # for z ~ U(-1, 1) drawn from the seed, row-major.
    z = np.random.default_rng(7).uniform(-1.0, 1.0, (6, 100)).astype(np.float32)
    expected = to_uint8(load_legacy("dcgan_sualab", sualab_run_dir)["generator"](z).numpy())
    for index, (row, col) in enumerate([(0, 0), (1, 2)]):
        cell = grid_cell(test_dir / "sample_image_random.png", row, col).astype(int)
        assert np.abs(cell - expected[[0, 5][index]]).max() <= 1


def test_conversion_refuses_a_folder_that_holds_a_run(converted_dir, sualab_run_dir):
    with pytest.raises(ValueError, match=r"--output_dir .* already holds a run or a conversion"):
        convert_dcgan_sualab(sualab_run_dir, str(converted_dir))


@pytest.mark.parametrize("form", ["converted", "folder", "prefix"])
def test_every_checkpoint_form_gives_the_original_outputs(
    form, converted_dir, sualab_run_dir, sualab_golden
):
    path = {
        "converted": str(converted_dir),
        "folder": sualab_run_dir,
        "prefix": os.path.join(sualab_run_dir, "model_94.ckpt"),
    }[form]
    generator, info = load_dcgan_generator(path)
    assert info["source"] == ("converted" if form == "converted" else "sualab_tf1")
    assert (info["z_dim"], info["image_size"], info["crop_size"]) == (100, 64, 96)
    fake = generator(sualab_golden["z"], training=False).numpy()
    assert np.abs(fake - sualab_golden["G_z"]).max() < 1e-4


def test_trained_run_samples_and_fid(tmp_path, run_cli, json_line, write_images):
    write_images(str(tmp_path / "faces"), 16)
    run_dir = tmp_path / "run"
    result = run_cli(
        "train_dcgan",
        f"--data_dir={tmp_path / 'faces'}",
        f"--save_dir={run_dir}",
        "--image_size=8",
        "--crop_size=16",
        "--batch_size=4",
        "--num_epochs=1",
        "--z_dim=4",
        "--G_FC_layer_channel=4",
        "--G_channel=2",
        "--D_channel=2",
        "--sample_H=1",
        "--sample_W=2",
        "--batch_size_eval=4",
        "--nofid",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json_line(result.stdout)
    assert summary["step"] == 4 and summary["checkpoint"].endswith("ckpt-4")
    assert (run_dir / "samples" / "sample_image_4.png").is_file()
    assert (run_dir / "learning_curve.png").is_file()

    test_dir = tmp_path / "test"
    result = run_cli(
        "test_dcgan",
        f"--checkpoint_dir={run_dir}",
        f"--test_dir={test_dir}",
        "--sample_H=2",
        "--sample_W=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json_line(result.stdout)
    assert record["source"] == "facegan_tf" and record["checkpoint"].endswith("ckpt-4")
    assert (record["image_size"], record["crop_size"], record["z_dim"]) == (8, 16, 4)
    # 8 x 8 samples with 2-pixel padding, the whole grid enlarged 8 times.
    assert Image.open(test_dir / "sample_image_random.png").size == (176, 176)
    assert Image.open(test_dir / "sample_image_interpolate.png").size == (896, 96)

    # FID/KID of the restored generator against the real folder, with a small stand-in
    # feature network (the FID network itself is tested in tests/eval).
    generator, info = load_dcgan_generator(str(run_dir))
    real = load_real_images(str(tmp_path / "faces"), info["crop_size"], info["image_size"])
    assert real.shape == (16, 8, 8, 3)
    metrics, _ = make_image_metrics({"": real}, feature_model=ChannelStatistics(), progress=False)
    given = []

    def metric(fakes):
        given.append(fakes)
        return metrics[""](fakes)

    record = sample_dcgan(generator, info, str(tmp_path / "fid"), 1, 2, 1, 12, 5, metric=metric)
    (fakes,) = given
    assert record["num_fake"] == 12 and fakes.shape == (12, 8, 8, 3) and fakes.dtype == np.uint8
    # FID against an independent float64 computation: numpy features, scipy's sqrtm.
    expected = reference_fid(channel_statistics(real), channel_statistics(fakes))
    assert expected > 1.0  # the tiny untrained generator is far from the real set
    assert record["fid"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert record["fid_sqrt"] == pytest.approx(np.sqrt(expected), rel=1e-5)
    assert np.isfinite(record["kid"])
    # The real set against itself: identical features, FID 0 up to round-off.
    assert abs(metrics[""](real)["fid"]) < 1e-6 * expected
    with open(tmp_path / "fid" / "metrics.json", encoding="utf-8") as f:
        assert json.load(f)["fid"] == record["fid"]
    assert "FID" in (tmp_path / "fid" / "index.html").read_text(encoding="utf-8")


def channel_statistics(images):
    """ChannelStatistics in float64 numpy: per-channel mean and (population) std."""
    pixels = np.asarray(images, np.float64)
    return np.concatenate([pixels.mean(axis=(1, 2)), pixels.std(axis=(1, 2))], axis=-1)


def reference_fid(features_1, features_2):
    """||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 sqrtm(S_1 S_2)), S with N - 1 (Heusel et al.)."""
    from scipy import linalg

    mu_1, mu_2 = features_1.mean(0), features_2.mean(0)
    sigma_1 = np.cov(features_1, rowvar=False)
    sigma_2 = np.cov(features_2, rowvar=False)
    root = linalg.sqrtm(sigma_1 @ sigma_2).real
    return float(((mu_1 - mu_2) ** 2).sum() + np.trace(sigma_1 + sigma_2 - 2 * root))


class ChannelStatistics(keras.Model):
    """Features = per-channel mean and std of the [0, 255] image (6 values)."""

    def call(self, images):
        return tf.concat(
            [tf.reduce_mean(images, axis=[1, 2]), tf.math.reduce_std(images, axis=[1, 2])], -1
        )


def test_missing_checkpoint_is_refused_in_one_line(tmp_path, run_cli):
    result = run_cli("test_dcgan", f"--checkpoint_dir={tmp_path / 'nothing'}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: No DCGAN checkpoint at --checkpoint_dir")
    assert "Traceback" not in result.stderr


def test_folders_without_a_loadable_checkpoint_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="No DCGAN checkpoint at --checkpoint_dir"):
        detect_checkpoint_kind(str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "facegan_run.json").write_text(
        json.dumps({"kind": "dcgan", "config": {"image_size": 8, "z_dim": 4}}), encoding="utf-8"
    )
    with pytest.raises(FileNotFoundError, match="has a facegan_run.json but no checkpoint"):
        load_dcgan_generator(str(run_dir))
    (run_dir / "facegan_run.json").write_text(
        json.dumps({"kind": "cgan", "config": {}}), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="holds a 'cgan' run; test_dcgan needs a 'dcgan' run"):
        load_dcgan_generator(str(run_dir))
