"""SIGKILL of ``tools/train_cyclegan.py`` during a checkpoint write and at a random moment of
training, then ``--continue_train``: the last complete checkpoint loads and the run resumes at
its step, epoch and optimizer state."""

import os
import random
import signal
import subprocess
import sys
import time

import tensorflow as tf

from facegan_tf.training.checkpointing import listed_checkpoints
from tests.reliability.conftest import TINY_FLAGS, assert_checkpoint_loads, write_gray_pngs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(root, *extra):
    args = [
        sys.executable, os.path.join(REPO, "tools", "train_cyclegan.py"), *TINY_FLAGS,
        f"--dataset_dir={root / 'data'}", f"--checkpoint_dir={root / 'checkpoint'}",
        f"--sample_dir={root / 'sample'}", f"--log_dir={root / 'logs'}",
        "--epoch=1000", "--epoch_step=1000", "--save_freq=1", *extra,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)


def _write_in_progress(folder) -> bool:
    names = os.listdir(folder) if os.path.isdir(folder) else []
    listed = set(listed_checkpoints(str(folder)))
    return bool(listed) and any(
        n.endswith("_temp") or (n.endswith(".index") and n[: -len(".index")] not in listed)
        for n in names
    )


def _values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {
        name: int(reader.get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))
        for name in ("step", "epoch", "batch_in_epoch", "g_optimizer/_iterations",
                     "d_optimizer/_iterations")
    }


def _kill(process):
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def test_sigkill_during_write_and_training_then_continue_train(tmp_path):
    for sub in ("trainA", "trainB"):
        write_gray_pngs(tmp_path / "data" / sub, 3, seed=len(sub))
    folder = tmp_path / "checkpoint"

    # 1. Killed the moment a checkpoint write is seen in progress (after one is complete).
    process = _start(tmp_path)
    deadline = time.monotonic() + 240
    while not _write_in_progress(folder):
        assert process.poll() is None and time.monotonic() < deadline, "no save seen"
        time.sleep(0.0005)
    _kill(process)
    latest = assert_checkpoint_loads(folder)
    before_resume = _values(latest)

    # 2. Resumed, then killed at a random moment of training.
    process = _start(tmp_path, "--continue_train")
    line = process.stdout.readline()
    assert line.startswith(f"resumed {latest} at step {before_resume['step']}, "
                           f"epoch {before_resume['epoch']}"), line
    time.sleep(random.Random(0).uniform(0.5, 3.0))
    _kill(process)
    latest = assert_checkpoint_loads(folder)
    state = _values(latest)
    assert state["step"] >= before_resume["step"]

    # 3. Resumed to the end: the same step, epoch and optimizer iterations continue.
    process = _start(tmp_path, "--continue_train", f"--max_steps={state['step'] + 2}")
    line = process.stdout.readline()
    assert process.wait(timeout=300) == 0
    assert line.startswith(f"resumed {latest} at step {state['step']}, epoch {state['epoch']}")
    final = _values(assert_checkpoint_loads(folder))
    assert final["step"] == state["step"] + 2
    assert final["g_optimizer/_iterations"] == state["g_optimizer/_iterations"] + 2
    assert final["d_optimizer/_iterations"] == state["d_optimizer/_iterations"] + 2
    assert final["g_optimizer/_iterations"] == final["step"]  # Adam never restarted
    per_epoch = 3  # three pairs, batch 1
    assert final["epoch"] * per_epoch + final["batch_in_epoch"] == final["step"]
