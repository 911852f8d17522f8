"""Command-line tools end to end with tiny settings (their ``run()``, in-process)."""

import json
import os
import re

import numpy as np
import pytest

TINY_FLAGS = [
    "--batch_size=4", "--image_size=16", "--g_base_filters=4", "--num_blocks=1",
    "--d_base_filters=4", "--d_output_channels=8", "--alexnet_conv_filters=4,4,4,4,4",
    "--alexnet_fc_units=8", "--alexnet_input_size=67", "--alexnet_pretrained_model=",
    "--age_pretrained_model=", "--age_groups=3", "--val_interval=2", "--save_interval=2",
]


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("cli")
    result = cli(
        "train_ipcgan", *TINY_FLAGS, "--max_steps=2", f"--list_dir={tiny_data / 'lists'}",
        f"--root_folder={tiny_data / 'images'}", f"--checkpoint_dir={out / 'ckpt'}",
        f"--sample_dir={out / 'sample'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (out / "stdout.txt").write_text(result.stdout, encoding="utf-8")
    return out


#: The original's print: '%s: step %d, d_loss = %.3f, g_loss = %.3f, fea_loss=%.3f,
#: age_loss=%.3f' with datetime.now() and the 0-based iteration index.
ORIGINAL_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}: step (\d+), d_loss = -?\d+\.\d{3}, "
    r"g_loss = -?\d+\.\d{3}, fea_loss=-?\d+\.\d{3}, age_loss=-?\d+\.\d{3}$"
)


def test_train_writes_checkpoint_samples_and_original_log_line(trained):
    lines = (trained / "stdout.txt").read_text(encoding="utf-8").splitlines()
    steps = [int(m.group(1)) for m in map(ORIGINAL_LOG_LINE.match, lines) if m]
    assert steps == [0, 1], lines
    assert (trained / "ckpt" / "facegan_run.json").is_file()
    assert (trained / "sample" / "2" / "source.png").is_file()
    with open(trained / "ckpt" / "facegan_run.json", encoding="utf-8") as f:
        config = json.load(f)["config"]
    assert config["gan_loss_weight"] == 75.0 and config["fea_loss_weight"] == 5e-5
    assert config["age_loss_weight"] == 30.0 and config["fea_layer_name"] == "conv5"
    status = json.loads((trained / "ckpt" / "run_status.json").read_text(encoding="utf-8"))
    assert (status["state"], status["kind"], status["step"]) == ("completed", "ipcgan", 2)
    assert status["config"] == config


def test_test_tool_faithful_and_clean_with_non_ascii_names(trained, tiny_data, cli):
    for mode in ("faithful", "clean"):
        out = trained / f"test_{mode}"
        result = cli(
            "test_ipcgan", f"--source={tiny_data / 'test'}", f"--checkpoint_dir={trained / 'ckpt'}",
            f"--train_dir={tiny_data / 'pad'}", f"--test_dir={out}", "--batch_size=4",
            f"--mode={mode}", "--target_groups=1,2",
        )
        assert result.returncode == 0, result.stderr[-2000:]
        names = sorted(os.listdir(out))
        assert "Zoë_ü.jpg_1.jpg" in names and "Zoë_ü.jpg" in names
        assert "a.png_2.jpg" in names and "index.html" in names and len(names) == 7
        _check_test_outputs(out, mode, trained / "ckpt", tiny_data)


def _check_test_outputs(out, mode, checkpoint_dir, tiny_data):
    """Every written image equals the in-process generator on the same batch (faithful: the
    image and the sorted padding faces, batch statistics; clean: the image alone, moving
    statistics), written through the same encoder."""
    from facegan_tf.data.images import read_image, save_image, to_uint8
    from facegan_tf.data.ipcgan_lists import condition_batch
    from facegan_tf.training.ipcgan_inference import load_ipcgan_models, load_test_image

    models, _ = load_ipcgan_models(str(checkpoint_dir), image_size=16)
    generator = models["generator"]
    padding = [load_test_image(str(tiny_data / "pad" / f"pad_{i}.png"), 16) for i in range(3)]
    outputs = {}
    for name in ("a.png", "Zoë_ü.jpg"):
        image = load_test_image(str(tiny_data / "test" / name), 16)
        pixels = np.round(image + np.asarray([104.0, 117.0, 124.0], np.float32)).astype(np.uint8)
        if name.endswith(".png"):  # the resized input copy (lossless format)
            np.testing.assert_array_equal(read_image(str(out / name)), pixels)
        batch = np.stack([image] + padding) if mode == "faithful" else image[None]
        expected = {}
        for group in (1, 2):
            output = generator(
                [batch, condition_batch(np.full([len(batch)], group), 3, 16)],
                training=mode == "faithful", update_statistics=False,
            ).numpy()[0]
            target = out.parent / f"expected_{mode}_{group}.jpg"
            save_image(str(target), to_uint8(output))
            expected[group] = read_image(str(target)).astype(np.float64)
        for group in (1, 2):
            written = read_image(str(out / f"{name}_{group}.jpg")).astype(np.float64)
            assert np.abs(written - expected[group]).mean() < 0.5, (name, group)
        outputs[name] = expected[1]
    # The outputs vary with the input, so a mixed-up or stale file would not pass.
    assert np.abs(outputs["a.png"] - outputs["Zoë_ü.jpg"]).mean() > 2.0


def test_test_tool_refuses_bad_inputs(trained, tiny_data, tmp_path, cli):
    missing = cli("test_ipcgan", f"--source={tiny_data / 'test'}",
                   f"--checkpoint_dir={tmp_path / 'none'}", f"--test_dir={tmp_path / 'out'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "facegan_run.json").write_text(json.dumps({"kind": "cyclegan", "config": {}}))
    result = cli("test_ipcgan", f"--source={tiny_data / 'test'}", f"--checkpoint_dir={wrong}",
                  f"--test_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "'cyclegan'" in result.stderr
    few = cli("test_ipcgan", f"--source={tiny_data / 'test'}",
               f"--checkpoint_dir={trained / 'ckpt'}", f"--train_dir={tiny_data / 'pad'}",
               f"--test_dir={tmp_path / 'out'}", "--target_groups=1")
    assert few.returncode == 2 and "31 faces" in few.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_train_refuses_bad_label_pairs_and_missing_pretrained(tiny_data, tmp_path, cli):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("0 1\n1 7\n")
    result = cli(
        "train_ipcgan", *TINY_FLAGS, "--max_steps=1", f"--list_dir={tiny_data / 'lists'}",
        f"--root_folder={tiny_data / 'images'}", f"--checkpoint_dir={tmp_path / 'c'}",
        f"--label_pair_file={pairs}",
    )
    assert result.returncode == 2 and "pairs.txt:2: age group out of range" in result.stderr
    result = cli("train_ipcgan", "--max_steps=1", f"--checkpoint_dir={tmp_path / 'd'}")
    assert result.returncode == 2 and "alexnet_pretrained_model" in result.stderr


def test_prepare_lists_tool(tmp_path, faces, cli):
    faces(str(tmp_path / "img"), ["14_A_B_0001.jpg", "33_C_D_0001.jpg", "55_E_F_0001.jpg"])
    result = cli("prepare_ipcgan_lists", f"--image_dir={tmp_path / 'img'}",
                  f"--output_dir={tmp_path / 'lists'}", "--test_fraction=0",
                  "--label_pair_repeats=1")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = (tmp_path / "lists" / "train_age_group_2.txt").read_text().split()
    assert listed == ["33_C_D_0001.jpg", "2"]
    assert len((tmp_path / "lists" / "train_label_pair.txt").read_text().splitlines()) == 20
