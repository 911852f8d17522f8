"""train_dcgan / train_cgan stop safely: a non-finite loss exits 3 naming the step and keeps
the last good checkpoint byte for byte; SIGINT exits 130 after saving the current step,
which --continue_train (alias of --resume) resumes."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tests.reliability.conftest import with_default_sigint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--image_size=16",
    "--crop_size=0",
    "--z_dim=8",
    "--G_FC_layer_channel=8",
    "--G_channel=4",
    "--D_channel=4",
    "--sample_H=1",
    "--sample_W=2",
    "--eval_sample_size=4",
    "--batch_size_eval=4",
    "--log_every_steps=1",
    "--nofid",
]


def write_images(folder, count, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))


def folder_digest(folder):
    """File name -> SHA-256 of every file in ``folder``."""
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if (folder / name).is_file()
    }


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_dcgan_non_finite_loss_exits_3_and_keeps_the_checkpoint(tool, tmp_path):
    data, run = tmp_path / "faces", tmp_path / "run"
    write_images(str(data), 8, seed=0)
    flags = [f"--data_dir={data}", f"--save_dir={run}", "--batch_size=4", *TINY]
    first = tool("train_dcgan", *flags, "--num_epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    before = folder_digest(run)
    assert "ckpt-2.index" in before
    # Resuming with an absurd learning rate: Adam moves every weight by ~1e30 on step 3, so
    # the losses overflow within the next two steps (before the end-of-epoch save at step 4).
    blown = tool("train_dcgan", *flags, "--num_epochs=3", "--resume", "--init_learning_rate=1e30")
    assert blown.returncode == 3, (blown.returncode, blown.stderr[-2000:])
    (line,) = error_lines(blown.stderr)
    match = re.search(r"Non-finite loss at step (\d+) \(", line)
    assert match and int(match.group(1)) in (3, 4), line
    assert "ckpt-2" in line
    after = folder_digest(run)
    for name in ("checkpoint", "ckpt-2.index", "facegan_run.json", "history.json"):
        assert after[name] == before[name], name
    status = json.loads((run / "run_status.json").read_text())
    assert (status["state"], status["kind"], status["start_step"]) == ("failed", "dcgan", 2)
    assert not [n for n in after if n.startswith(("ckpt-3", "ckpt-4"))]


def test_cgan_sigint_saves_the_step_and_continue_train_resumes(tool, tmp_path):
    data, run = tmp_path / "classes", tmp_path / "run"
    write_images(str(data / "a"), 4, seed=1)
    write_images(str(data / "b"), 4, seed=2)
    flags = [
        "--model=cdcgan",
        f"--data_dir={data}",
        f"--save_dir={run}",
        "--batch_size=2",
        "--num_epochs=100000",
        *TINY,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(
        with_default_sigint(
            [sys.executable, os.path.join(REPO_ROOT, "tools", "train_cgan.py"), *flags]
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stats = run / "logs" / "stats.jsonl"
    deadline = time.monotonic() + 300
    try:
        # Wait until a few steps (and the first epoch's checkpoint at step 4) are done.
        while time.monotonic() < deadline and process.poll() is None:
            if stats.exists() and len(stats.read_text().splitlines()) >= 6:
                break
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1][-2000:]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    match = re.search(r"interrupted at step (\d+); saved '([^']+)'", stderr)
    assert match, stderr[-2000:]
    step = int(match.group(1))
    assert step >= 5 and match.group(2).endswith(f"ckpt-{step}")
    assert (run / f"ckpt-{step}.index").exists()
    assert (run / "ckpt-4.index").exists()  # the end-of-epoch checkpoint before it

    resumed = tool("train_cgan", *flags, "--continue_train", f"--max_steps={step + 1}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at step {step}" in resumed.stdout
    assert (run / f"ckpt-{step + 1}.index").exists()
