"""The originals' documented usage, typed literally in a folder laid out like the original
repository, with only the flags its README shows.

Where a default is too heavy for a CI machine (200 epochs, 256 px, 10,000 FID samples), a test
adds only a stop flag (``--max_steps``) and shrinking flags (sizes, widths), and says so. The two
commands of the product's description run as subprocesses, exactly as typed; the rest run
in-process through the tools' own ``run()`` (`tests.cli_runner`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.cli_runner import run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_ENV = "FACEGAN_GOLDEN_DIR"
IPCGAN_RUN = "0_conv5_lsgan_transfer_g75_0.5f-4_a30"
#: TensorFlow start-up lines a CPU user must not see by default.
NOISE = re.compile(r"cuda|oneDNN|absl::InitializeLog|cpu_feature_guard|^[IWE]\d{4} ", re.I | re.M)


def _faces(folder, names, size, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        base = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        Image.fromarray(base).resize((size, size), Image.BILINEAR).save(
            os.path.join(folder, name)
        )


def _typed(command: str, cwd, extra_env=None, timeout=900):
    """Runs ``python tools/<tool>.py ...`` as typed (the tools folder of this repository)."""
    args = command.split()
    assert args[0] == "python" and args[1].startswith("tools/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "FACEGAN_TF_LOG"))}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, os.path.join(REPO, args[1]), *args[2:]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _assert_quiet_success(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert not NOISE.search(result.stderr), result.stderr


# ------------------------------------------------------------------------------------------
# xhujoy/CycleGAN-tensorflow: ./datasets/<name>/{trainA,trainB,testA,testB}


@pytest.fixture
def xhujoy_folder(tmp_path):
    for sub, seed in (("trainA", 0), ("trainB", 1), ("testA", 2), ("testB", 3)):
        _faces(tmp_path / "datasets" / "faces" / sub, ["0.jpg", "1.jpg"], 32, seed)
    return tmp_path


def test_xhujoy_train_then_test_both_directions(xhujoy_folder):
    # README: python main.py --dataset_dir=<name>; then --phase=test --which_direction=AtoB|BtoA.
    # Shrinking flags (the defaults train 200 epochs at 256 px): --max_steps and the sizes.
    shrink = ["--max_steps=1", "--load_size=20", "--fine_size=16", "--ngf=4", "--ndf=4",
              "--num_blocks=1"]
    train = run_cli("train_cyclegan", "--dataset_dir=faces", *shrink, cwd=xhujoy_folder)
    assert train.returncode == 0, train.stderr
    assert os.path.isfile(xhujoy_folder / "checkpoint" / "facegan_run.json")
    for direction in ("AtoB", "BtoA"):
        result = run_cli("train_cyclegan", "--dataset_dir=faces", "--phase=test",
                         f"--which_direction={direction}", cwd=xhujoy_folder)
        assert result.returncode == 0, result.stderr
        for name in ("0.jpg", "1.jpg"):
            output = xhujoy_folder / "test" / f"{direction}_{name}"
            assert Image.open(output).size == (16, 16)  # the run's size, read from the run
    assert (xhujoy_folder / "test" / "index.html").is_file()


@pytest.mark.slow
def test_product_command_train_cyclegan(tmp_path):
    # Typed as the product's description shows; --max_steps=1 stops it after one step at the
    # real defaults (256 px, ngf 64, 9 blocks), with the machine's own oneDNN setting
    # (tests/reliability/test_onednn.py forces both settings).
    data = tmp_path / "my_faces"
    for sub, seed in (("trainA", 0), ("trainB", 1), ("testA", 2), ("testB", 3)):
        _faces(data / sub, ["0.png"], 32, seed)
    result = _typed(f"python tools/train_cyclegan.py --data_dir={data} --epochs=200 "
                    "--max_steps=1", cwd=tmp_path)
    _assert_quiet_success(result)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["step"] == 1
    with open(tmp_path / "checkpoint" / "facegan_run.json", encoding="utf-8") as f:
        config = json.load(f)["config"]
    assert (config["epochs"], config["fine_size"], config["ngf"]) == (200, 256, 64)
    shutil.rmtree(tmp_path / "checkpoint")  # about 400 MB of 256 px weights and Adam slots


# ------------------------------------------------------------------------------------------
# IPCGAN: ./images/test, ./images/train, checkpoint at test.py's default --checkpoint_dir


@pytest.fixture
def ipcgan_folder(tmp_path):
    root = os.environ.get(GOLDEN_ENV)
    if not root:
        pytest.skip(f"{GOLDEN_ENV} is not set (the IPCGAN checkpoint of the original, 36 MB, "
                    "is read from there)")
    checkpoint = os.path.join(root, "ipcgan", "checkpoints", IPCGAN_RUN)
    if not os.path.isdir(checkpoint):
        pytest.skip(f"{checkpoint} does not exist ({GOLDEN_ENV}={root})")
    os.makedirs(tmp_path / "checkpoints")
    os.symlink(checkpoint, tmp_path / "checkpoints" / IPCGAN_RUN)
    _faces(tmp_path / "images" / "test", ["young.jpg"], 128, 0)
    _faces(tmp_path / "images" / "train", [f"pad_{i:02d}.jpg" for i in range(31)], 128, 1)
    return tmp_path


def _aged_outputs(folder):
    out = folder / "age" / IPCGAN_RUN
    assert sorted(os.listdir(out)) == sorted(
        ["young.jpg", "index.html"] + [f"young.jpg_{j}.jpg" for j in (1, 2, 3, 4)]
    ), os.listdir(out)
    for j in (1, 2, 3, 4):
        assert Image.open(out / f"young.jpg_{j}.jpg").size == (128, 128)


def test_ipcgan_test_script_with_no_flag(ipcgan_folder):
    # README: python test.py (real defaults: 128 px, batch 32 = 1 test face + 31 padding faces).
    result = run_cli("test_ipcgan", cwd=ipcgan_folder)
    assert result.returncode == 0, result.stderr
    assert "xhujoy" not in result.stdout and "acgan.model-399999" in result.stdout
    _aged_outputs(ipcgan_folder)


def test_product_command_test_ipcgan(ipcgan_folder):
    result = _typed("python tools/test_ipcgan.py --source=./images/test", cwd=ipcgan_folder)
    _assert_quiet_success(result)
    _aged_outputs(ipcgan_folder)


def test_ipcgan_training_with_its_list_file_defaults(tmp_path):
    # List files at the default --list_dir (./data/ipcgan_lists), images under the default
    # --root_folder (CACD_cropped_400/), outputs at the defaults of age_lsgan_transfer.sh.
    # The original's pretrained AlexNet and age classifier are not published: empty
    # --alexnet_pretrained_model/--age_pretrained_model use a random frozen AlexNet. Stop and
    # shrinking flags: --max_steps, --image_size, --batch_size and the widths.
    from facegan_tf.data.ipcgan_lists import write_lists

    names = [f"{15 + 10 * (i % 5)}_Person_{i:02d}.jpg" for i in range(20)]
    _faces(tmp_path / "CACD_cropped_400", names, 32, 0)
    groups = {g: [n for i, n in enumerate(names) if i % 5 == g] for g in range(5)}
    write_lists(str(tmp_path / "data" / "ipcgan_lists"), groups, groups[0], "train", 5)
    result = run_cli(
        "train_ipcgan", "--alexnet_pretrained_model=", "--age_pretrained_model=",
        "--max_steps=1", "--image_size=16", "--batch_size=2", "--g_base_filters=4",
        "--num_blocks=1", "--d_base_filters=4", "--d_output_channels=4",
        "--alexnet_conv_filters=4,4,4,4,4", "--alexnet_fc_units=4", "--alexnet_input_size=67",
        "--val_interval=1", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "checkpoints" / "age" / IPCGAN_RUN
    assert (run / "facegan_run.json").is_file()
    assert (tmp_path / "age" / IPCGAN_RUN / "index.html").is_file()


# ------------------------------------------------------------------------------------------
# sualab/DCGAN_Face_gen_tf: data/FFHQ/thumbnails128x128, then test


def test_sualab_train_then_test_with_defaults(tmp_path):
    # README: python train.py, then python test.py. Stop and shrinking flags for training
    # (the defaults run 100 epochs of 70,000 faces with 10,000-sample FIDs): --max_steps,
    # --batch_size, the widths, the grid size, and --nofid.
    _faces(tmp_path / "data" / "FFHQ" / "thumbnails128x128", [f"{i:05d}.png" for i in range(8)],
           128, 0)
    train = run_cli("train_dcgan", "--max_steps=1", "--batch_size=4", "--G_channel=4",
                    "--D_channel=4", "--G_FC_layer_channel=8", "--sample_H=2", "--sample_W=2",
                    "--nofid", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert (tmp_path / "DCGAN_training_FFHQ_z_100_96crop" / "facegan_run.json").is_file()
    test = run_cli("test_dcgan", cwd=tmp_path)
    assert test.returncode == 0, test.stderr
    random_grid = Image.open(tmp_path / "test_dcgan" / "sample_image_random.png")
    strip = Image.open(tmp_path / "test_dcgan" / "sample_image_interpolate.png")
    assert random_grid.size[0] > strip.size[1] and strip.size[0] > strip.size[1]


# ------------------------------------------------------------------------------------------
# Alias groups: no flag of a group given -> the original flag's default.


def test_alias_group_falls_back_to_the_original_flag_default():
    from absl import flags

    from facegan_tf.cli.common import first_set

    values = flags.FlagValues()
    flags.DEFINE_string("test_data_dir", "./images/test/", "original", flag_values=values)
    flags.DEFINE_string("source", None, "alias", flag_values=values)
    values(["prog"])
    assert first_set("test_data_dir", "source", flag_values=values) == "./images/test/"
    values(["prog", "--source=./mine"])
    assert first_set("test_data_dir", "source", flag_values=values) == "./mine"
    values.unparse_flags()
    values(["prog", "--test_data_dir=./theirs"])
    assert first_set("test_data_dir", "source", flag_values=values) == "./theirs"


def test_every_alias_is_resolved_through_its_original_flag():
    """Each ``Alias of --X`` flag of every tool is read with ``first_set("X", alias)`` (or a
    wrapper passing the same pair), so no tool falls back to the alias's None default."""
    folder = os.path.join(REPO, "facegan_tf", "cli")
    pairs = 0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            source = f.read()
        for alias, original in re.findall(
            r'DEFINE_\w+\(\s*"(\w+)",\s*None,\s*"Alias of --(\w+)\.', source
        ):
            pairs += 1
            call = re.compile(
                rf'(first_set|aliased)\(\s*"{original}",\s*"{alias}"[,)]'
            )
            assert call.search(source), f"{name}: --{alias} is not resolved via --{original}"
    assert pairs == 8  # train_cyclegan 3, test_cyclegan 1, test_ipcgan 3, eval_aging 1
