"""What a new user meets first: help, reruns, error lines, default locations.

The tools run in-process through `tests.cli_runner.run_cli` (their real ``run()`` entry point,
absl parsing included); only the start-up noise check needs a fresh interpreter.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.cli_runner import TOOLS, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error_line(result) -> str:
    """The tool's one-line refusal (stderr must hold exactly one line, no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def _write_rgb(path, size=24, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """A tiny CycleGAN run folder of ours trained at fine_size 24 (not the 256 default)."""
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

    folder = str(tmp_path_factory.mktemp("run24") / "checkpoint")
    config = CycleGANConfig(
        load_size=24, fine_size=24, ngf=4, ndf=4, num_blocks=1, max_size=2,
        checkpoint_dir=folder,
    )
    CycleGANTrainer(config).save()
    return folder


# 1. --help / --helpfull exit 0 on every console script.


def test_console_scripts_are_the_tools_tested_here():
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        scripts = re.findall(r'"facegan-[a-z0-9-]+=facegan_tf\.cli\.(\w+):run"', f.read())
    assert sorted(scripts) == sorted(TOOLS) and len(scripts) == 17


@pytest.mark.parametrize("tool", TOOLS)
def test_help_exits_zero(tool):
    for flag in ("--help", "--helpfull"):
        result = run_cli(tool, flag)
        assert result.returncode == 0, (flag, result.stderr)
        assert "--" in result.stdout


# 2. A repeated --demo starts a fresh run and says so.


def _earlier_demo_run(run_dir, kind, *leftovers):
    """What an earlier --demo left: a run file of ``kind`` (and stale output files)."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "facegan_run.json"), "w", encoding="utf-8") as f:
        json.dump({"kind": kind, "config": {}}, f)
    for path in leftovers:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("stale")


def test_demo_rerun_starts_fresh_cyclegan(tmp_path):
    demo = tmp_path / "demo"
    stale = demo / "sample" / "A2B_079_0009999.png"
    _earlier_demo_run(demo / "checkpoint", "cyclegan", stale)
    # The preset trains 80 epochs; --max_steps and the width flags only shorten the rerun.
    result = run_cli("train_cyclegan", "--demo", f"--demo_dir={demo}", "--max_steps=1",
                     "--ngf=4", "--ndf=4", "--num_blocks=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"demo: starting a fresh run in {demo}" in result.stdout
    assert "--continue_train resumes it" in result.stdout and "--demo_dir=DIR" in result.stdout
    summary = [line for line in result.stdout.splitlines() if line.startswith('{"')]
    assert json.loads(summary[0])["step"] == 1
    assert not stale.exists() and (demo / "data" / "trainA").is_dir()


def test_demo_rerun_starts_fresh_dcgan(tmp_path):
    demo = tmp_path / "dcgan"
    stale = demo / "samples" / "sample_image_9999.png"
    _earlier_demo_run(demo, "dcgan", stale)
    result = run_cli("train_dcgan", "--demo", f"--demo_dir={demo}", "--max_steps=1", "--nofid",
                     "--G_channel=4", "--D_channel=4", "--G_FC_layer_channel=8",
                     "--sample_H=2", "--sample_W=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"demo: starting a fresh run in {demo}" in result.stdout
    assert "--resume resumes it" in result.stdout
    assert not stale.exists()


def test_demo_keeps_a_folder_that_holds_another_kind_of_run(tmp_path):
    demo = tmp_path / "dcgan"
    _earlier_demo_run(demo, "cyclegan")
    result = run_cli("train_dcgan", "--demo", f"--demo_dir={demo}", "--max_steps=1", cwd=tmp_path)
    assert result.returncode == 2
    assert "already holds a run" in _error_line(result)
    assert (demo / "facegan_run.json").is_file()


# 3. Sample pages list the newest step first (by number, not by text).


class _Captions(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_sample_page_is_newest_first_by_step(tmp_path):
    from facegan_tf.training.gan_loop import GANLoopTrainer

    for step in (95, 300, 1092, 5):
        _write_rgb(tmp_path / f"sample_image_{step}.png", size=8, seed=step)
    index = GANLoopTrainer.write_sample_page(None, str(tmp_path), "samples")
    parser = _Captions()
    with open(index, encoding="utf-8") as f:
        parser.feed(f.read())
    steps = [int(re.search(r"_(\d+)\.png", src).group(1)) for src in parser.images]
    assert steps == [1092, 300, 95, 5]


def test_class_sample_names_sort_by_step_then_class():
    from facegan_tf.training.samples import newest_first

    names = ["male_95.png", "female_95.png", "male_300.png", "female_300.png"]
    assert newest_first(names) == ["female_300.png", "male_300.png", "female_95.png",
                                   "male_95.png"]


# 5, 6, 9. test_cyclegan: bad size, unreadable single input, the run's own size.


def test_test_cyclegan_bad_size_is_one_line_and_writes_nothing(cyclegan_run, tmp_path):
    source = _write_rgb(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    result = run_cli("test_cyclegan", f"--checkpoint_dir={cyclegan_run}", f"--source={source}",
                     f"--test_dir={out}", "--fine_size=30")
    assert result.returncode == 2
    assert "multiple of 4" in _error_line(result) and "fine_size=30" in result.stderr
    assert not out.exists()


def test_test_cyclegan_unreadable_single_input_fails(cyclegan_run, tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text, not a JPEG\n")
    out = tmp_path / "out"
    result = run_cli("test_cyclegan", f"--checkpoint_dir={cyclegan_run}", f"--source={fake}",
                     f"--test_dir={out}")
    assert result.returncode == 2
    line = _error_line(result)
    assert "Cannot decode image" in line and "fake.jpg" in line and "nothing was written" in line
    assert not out.exists()


def test_test_cyclegan_uses_the_run_size_unless_a_flag_overrides(cyclegan_run, tmp_path):
    source = _write_rgb(tmp_path / "in" / "a.png", size=40)
    out = tmp_path / "out"
    result = run_cli("test_cyclegan", f"--checkpoint_dir={cyclegan_run}", f"--source={source}",
                     f"--test_dir={out}")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "AtoB_a.png").size == (24, 24)
    result = run_cli("test_cyclegan", f"--checkpoint_dir={cyclegan_run}", f"--source={source}",
                     f"--test_dir={out}", "--fine_size=20")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "AtoB_a.png").size == (20, 20)


# 7. export_generator --int8 --source: sub-folders searched, unreadable files skipped.


def test_export_int8_calibration_searches_subfolders_and_skips_unreadable(
    cyclegan_run, tmp_path
):
    photos = tmp_path / "photos"
    _write_rgb(photos / "alice" / "1.jpg", seed=1)
    _write_rgb(photos / "bob" / "2.png", seed=2)
    (photos / "bob" / "broken.jpg").write_text("not an image")
    result = run_cli("export_generator", f"--model={cyclegan_run}",
                     f"--output_dir={tmp_path / 'export'}", "--formats=tflite", "--int8",
                     f"--source={photos}", "--noprogress")
    assert result.returncode == 0, result.stderr
    assert "calibration: skipped 1 unreadable file(s)" in result.stdout
    assert "calibration: 2 image(s)" in result.stdout
    assert os.path.isfile(tmp_path / "export" / "generator_int8.tflite")


# 8. Missing paths say the path does not exist.


@pytest.mark.parametrize(
    "tool, args, flag",
    [
        ("prepare_ipcgan_lists", ["--image_dir={missing}", "--output_dir={tmp}/lists"],
         "--image_dir"),
        ("prepare_utkface", ["--utkface_dir={missing}", "--output_dir={tmp}/data"], "UTKFace"),
        ("eval_aging", ["--save_dir={missing}"], "--save_dir"),
        ("convert_tf1_checkpoint", ["--kind=ipcgan", "--tf1_checkpoint={missing}",
                                    "--output_dir={tmp}/converted"], "--tf1_checkpoint"),
    ],
)
def test_missing_paths_say_they_do_not_exist(tool, args, flag, tmp_path):
    missing = str(tmp_path / "nonexistent")
    result = run_cli(tool, *(a.format(missing=missing, tmp=tmp_path) for a in args))
    assert result.returncode == 2
    line = _error_line(result)
    assert flag in line and repr(missing) in line and "does not exist" in line
    assert os.listdir(tmp_path) == []


# 10. Age ranges that match nothing are refused with the ages found.


def test_prepare_utkface_refuses_ranges_that_match_nothing(tmp_path):
    faces = tmp_path / "UTKFace"
    for age in (30, 31, 33, 70):
        _write_rgb(faces / f"{age}_0_0_2017010402310{age}.jpg.chip.jpg", size=8)
    out = tmp_path / "out"
    result = run_cli("prepare_utkface", f"--utkface_dir={faces}", f"--output_dir={out}",
                     "--domain_a_ages=5-12", "--domain_b_ages=25-40")
    assert result.returncode == 2
    line = _error_line(result)
    assert "--domain_a_ages=5-12 matches no face" in line
    assert "ages found: 30-31, 33, 70" in line
    assert not out.exists()


# 11. FID weights: one cache folder, an existing verified copy is reused.


def test_fetch_fid_weights_reuses_the_cached_copy(tmp_path, monkeypatch):
    from facegan_tf.eval import weights

    cache = tmp_path / "cache"
    cache.mkdir()
    stand_in = cache / weights.WEIGHTS_FILENAME
    stand_in.write_bytes(b"stand-in for the verified weights")
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    monkeypatch.setattr(weights, "FID_WEIGHTS_SHA256", weights.sha256_of_file(str(stand_in)))
    fetched = []
    monkeypatch.setattr(weights, "fetch_fid_weights", lambda path, **kw: fetched.append(path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("fetch_fid_weights", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"{stand_in} is present and valid" in result.stdout
    assert fetched == [] and os.listdir(elsewhere) == []
    assert weights.find_default_weights() == str(stand_in)


def test_fetch_fid_weights_writes_to_the_cache_not_the_current_folder(tmp_path, monkeypatch):
    from facegan_tf.eval import weights

    cache = tmp_path / "moved cache"
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    monkeypatch.setattr(weights, "FID_WEIGHTS_SHA256", "0" * 64)  # no verified copy anywhere
    fetched = []
    monkeypatch.setattr(weights, "fetch_fid_weights", lambda path, **kw: fetched.append(path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("fetch_fid_weights", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert fetched == [str(cache / weights.WEIGHTS_FILENAME)]
    assert os.listdir(elsewhere) == []
    assert weights.default_weights_candidates()[0] == str(cache / weights.WEIGHTS_FILENAME)


# 12. A refused run leaves nothing behind (every training tool, at its default folders).

_TINY_IPCGAN = ["--alexnet_pretrained_model=", "--age_pretrained_model=", "--image_size=16",
                "--batch_size=2", "--g_base_filters=4", "--num_blocks=1", "--d_base_filters=4",
                "--d_output_channels=4", "--alexnet_conv_filters=4,4,4,4,4",
                "--alexnet_fc_units=4", "--alexnet_input_size=67"]


@pytest.mark.parametrize(
    "tool, args",
    [
        ("train_cyclegan", ["--dataset_dir=./missing_faces"]),
        ("train_cyclegan", []),  # the original's default dataset (horse2zebra) is absent
        ("train_dcgan", ["--data_dir=./missing_faces", "--G_channel=4", "--D_channel=4"]),
        ("train_cgan", ["--data_dir=./missing_faces"]),
        ("train_ipcgan", ["--list_dir=./missing_lists", *_TINY_IPCGAN]),
        ("train_age_classifier", ["--list_dir=./missing_lists"]),
    ],
)
def test_refused_training_run_leaves_nothing(tool, args, tmp_path):
    result = run_cli(tool, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    _error_line(result)
    assert os.listdir(tmp_path) == []


# Issue 15, item 4: no TensorFlow start-up noise by default; FACEGAN_TF_LOG=1 shows it.

NOISE = re.compile(r"cuda|oneDNN|absl::InitializeLog|cpu_feature_guard|^[IWE]\d{4} ", re.I | re.M)


def test_tools_start_quietly_and_tf_logs_can_be_shown(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "FACEGAN_TF_LOG"))}
    command = [sys.executable, os.path.join(REPO, "tools", "prepare_ipcgan_lists.py"),
               f"--image_dir={tmp_path / 'missing'}", f"--output_dir={tmp_path / 'lists'}"]
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 2
    assert not NOISE.search(quiet.stderr), quiet.stderr
    _error_line(quiet)
    loud = subprocess.run(command, env={**env, "FACEGAN_TF_LOG": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert loud.returncode == 2
    if not NOISE.search(loud.stderr):
        pytest.skip("this TensorFlow build prints no start-up lines on this machine")
