"""train_cyclegan stops safely: a non-finite loss exits 3 keeping the last good checkpoint
byte for byte; SIGINT exits 130 after saving the current step, which --continue_train
resumes with the optimizer state of that step."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.reliability.conftest import with_default_sigint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_images(folder, count, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(pixels, "L").save(os.path.join(folder, f"{i}.png"))


@pytest.fixture()
def run_flags(tmp_path):
    data = tmp_path / "data"
    for sub, seed in (("trainA", 0), ("trainB", 1), ("testA", 2), ("testB", 3)):
        write_images(str(data / sub), 4, seed)
    return [
        f"--dataset_dir={data}", "--load_size=16", "--fine_size=16", "--ngf=4", "--ndf=4",
        "--num_blocks=1", "--input_nc=1", "--output_nc=1", "--max_size=2", "--log_freq=1",
        "--print_freq=100000", "--save_freq=100000", "--batch_size=1",
        f"--checkpoint_dir={tmp_path / 'ckpt'}", f"--sample_dir={tmp_path / 's'}",
        f"--log_dir={tmp_path / 'logs'}",
    ]


def folder_digest(folder):
    """File name -> SHA-256 of every file in ``folder`` but the run status (rewritten by
    every run)."""
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if (folder / name).is_file() and name != "run_status.json"
    }


def checkpoint_value(path, prefix):
    """The value of the one checkpoint tensor whose key starts with ``prefix``."""
    reader = tf.train.load_checkpoint(str(path))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(prefix)]
    assert len(keys) == 1, (prefix, keys)
    return reader.get_tensor(keys[0])


def test_non_finite_loss_exits_3_and_keeps_the_last_checkpoint(
    tool, subprocess_tool, run_flags, tmp_path
):
    first = tool("train_cyclegan", *run_flags, "--max_steps=1")
    assert first.returncode == 0, first.stderr[-2000:]
    before = folder_digest(tmp_path / "ckpt")
    assert "ckpt-1.index" in before

    # lr = 1e30: Adam's first update moves every weight by about 1e30, so the next losses
    # overflow float32. Run as ``python tools/...``: exit code 3 across a process boundary.
    run = subprocess_tool(
        "train_cyclegan", *run_flags, "--continue_train", "--lr=1e30", "--max_steps=8"
    )
    assert run.returncode == 3, (run.stdout[-1000:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    message = lines[-1]
    match = re.match(r"error: Non-finite loss at step (\d+) \(", message)
    assert match, message
    assert 2 <= int(match.group(1)) <= 8
    assert "ckpt-1'" in message and "--continue_train" in message
    assert sum("Non-finite" in line for line in lines) == 1

    assert folder_digest(tmp_path / "ckpt") == before
    status = json.loads((tmp_path / "ckpt" / "run_status.json").read_text())
    assert (status["state"], status["start_step"]) == ("failed", 1)
    assert status["error"].startswith("NonFiniteLossError: Non-finite loss")
    latest = tf.train.latest_checkpoint(str(tmp_path / "ckpt"))
    assert latest.endswith("ckpt-1")
    assert int(checkpoint_value(latest, "step/")) == 1
    kernel = checkpoint_value(latest, "generator_a2b/generator_a2b.Sg_e1_c.Skernel")
    assert np.isfinite(kernel).all()


def test_sigint_saves_the_current_step_and_resume_continues(tool, run_flags, tmp_path):
    first = tool("train_cyclegan", *run_flags, "--max_steps=2")
    assert first.returncode == 0, first.stderr[-2000:]
    before = folder_digest(tmp_path / "ckpt")

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        with_default_sigint(
            [sys.executable, os.path.join(REPO_ROOT, "tools", "train_cyclegan.py"), *run_flags,
             "--continue_train", "--epoch=100000", "--epoch_step=0"]
        ),
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stats = tmp_path / "logs" / "stats.jsonl"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if stats.is_file() and '"step": 4,' in stats.read_text():
                break  # training has resumed and runs steps
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1][-2000:]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    match = re.search(r"interrupted at step (\d+); saved '([^']+)'", err)
    assert match, err[-2000:]
    step = int(match.group(1))
    assert step >= 4
    saved = match.group(2)
    assert saved.endswith(f"ckpt-{step}")
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")) == saved
    assert int(checkpoint_value(saved, "step/")) == step
    assert int(checkpoint_value(saved, "g_optimizer/_iterations")) == step
    # The earlier checkpoint is untouched.
    after = folder_digest(tmp_path / "ckpt")
    for name in ("ckpt-2.index", "ckpt-2.data-00000-of-00001"):
        assert after[name] == before[name]

    resumed = tool(
        "train_cyclegan", *run_flags, "--continue_train", "--epoch=100000", "--epoch_step=0",
        f"--max_steps={step + 2}",
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at step {step}," in resumed.stdout
    final = tf.train.latest_checkpoint(str(tmp_path / "ckpt"))
    assert final.endswith(f"ckpt-{step + 2}")
    assert int(checkpoint_value(final, "g_optimizer/_iterations")) == step + 2
    assert int(checkpoint_value(final, "d_optimizer/_iterations")) == step + 2
