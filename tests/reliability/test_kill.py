"""SIGKILL of ``tools/train_cyclegan.py`` inside a checkpoint write and at a random moment of
training, then ``--continue_train``: the last complete checkpoint loads and the run resumes at
its step, epoch and optimizer state. A second Ctrl-C during a checkpoint write acts like that
kill (docs/reliability.md, row 30).

The kill inside a write is placed with ``FACEGAN_CHECKPOINT_HOLD``: the save stops once the new
checkpoint's files are written and before the state file lists it, writes the marker file and
waits, so the test sees the process inside the write when it kills it."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

from facegan_tf.training import guards
from facegan_tf.training.checkpointing import HOLD_ENV, TrainingCheckpoint, listed_checkpoints
from tests.reliability.conftest import (
    TINY_FLAGS,
    assert_checkpoint_loads,
    tree_digest,
    with_default_sigint,
    write_gray_pngs,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(root, *extra, hold=None, stderr=subprocess.DEVNULL):
    args = [
        sys.executable, os.path.join(REPO, "tools", "train_cyclegan.py"), *TINY_FLAGS,
        f"--dataset_dir={root / 'data'}", f"--checkpoint_dir={root / 'checkpoint'}",
        f"--sample_dir={root / 'sample'}", f"--log_dir={root / 'logs'}",
        "--epoch=1000", "--epoch_step=1000", *extra,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop(HOLD_ENV, None)
    if hold is not None:
        env[HOLD_ENV] = str(hold)
    return subprocess.Popen(with_default_sigint(args), stdout=subprocess.PIPE, stderr=stderr,
                            text=True, env=env)


def _held_checkpoint(process, hold, deadline=240):
    """Waits until ``process`` holds inside a save; returns the checkpoint name it writes."""
    end = time.monotonic() + deadline
    while not hold.exists():
        assert process.poll() is None, "the training process ended before it saved"
        assert time.monotonic() < end, "no checkpoint write seen"
        time.sleep(0.005)
    return os.path.basename(hold.read_text())


def _assert_inside_write(folder, held, listed):
    """``held`` is written (its files are complete on disk) and not listed: the write was
    between its data and its state-file update; the state file lists ``listed``."""
    assert listed_checkpoints(str(folder)) == listed
    assert held not in listed
    names = os.listdir(folder)
    assert f"{held}.index" in names and f"{held}.data-00000-of-00001" in names, names


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

    # 1. Killed inside the write of the second checkpoint (the first one is complete).
    hold = tmp_path / "hold"
    process = _start(tmp_path, "--save_freq=1", hold=hold)
    assert _held_checkpoint(process, hold) == "ckpt-1"
    assert listed_checkpoints(str(folder)) == []
    hold.unlink()  # let the first save finish
    assert _held_checkpoint(process, hold) == "ckpt-2"
    _assert_inside_write(folder, "ckpt-2", ["ckpt-1"])
    before_kill = tree_digest(folder)
    assert process.poll() is None  # still inside the write
    _kill(process)
    assert hold.exists()  # the save never went on
    latest = assert_checkpoint_loads(folder)
    assert latest == str(folder / "ckpt-1")
    after_kill = tree_digest(folder)
    for name in ("ckpt-1.index", "ckpt-1.data-00000-of-00001", "checkpoint"):
        assert after_kill[name] == before_kill[name], name
    before_resume = _values(latest)
    assert before_resume["step"] == 1

    # 2. Resumed, then killed at a random moment of training.
    process = _start(tmp_path, "--continue_train", "--save_freq=1")
    line = process.stdout.readline()
    assert line.startswith(f"resumed {latest} at step {before_resume['step']}, "
                           f"epoch {before_resume['epoch']}"), line
    time.sleep(random.Random(0).uniform(0.5, 3.0))
    _kill(process)
    latest = assert_checkpoint_loads(folder)
    state = _values(latest)
    assert state["step"] >= before_resume["step"]

    # 3. Resumed to the end: the same step, epoch and optimizer iterations continue.
    process = _start(tmp_path, "--continue_train", "--save_freq=1",
                     f"--max_steps={state['step'] + 2}")
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


def test_second_ctrl_c_inside_a_checkpoint_write_acts_as_a_kill(cyclegan_run, tmp_path):
    """Row 30: the first Ctrl-C is deferred to the end of the step, whose save then starts; a
    second Ctrl-C inside that write stops the process at once (exit 130, no "saved"), and the
    previous checkpoint stays the latest, byte for byte, and loads."""
    import shutil

    _, checkpoint_dir, data = cyclegan_run
    shutil.copytree(data, tmp_path / "data")
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint_dir, folder)  # ckpt-1 and ckpt-2, ckpt-2 the latest
    before = tree_digest(folder)
    hold = tmp_path / "hold"
    process = _start(tmp_path, "--continue_train", "--save_freq=100000", "--log_freq=1",
                     hold=hold, stderr=subprocess.PIPE)
    try:
        stats = tmp_path / "logs" / "stats.jsonl"
        deadline = time.monotonic() + 240
        while not (stats.is_file() and '"step": 4,' in stats.read_text()):
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "training never reached step 4"
            time.sleep(0.05)
        assert not hold.exists()  # no save yet: --save_freq is beyond the run
        process.send_signal(signal.SIGINT)
        held = _held_checkpoint(process, hold, deadline=120)  # the interrupt's save
        step = int(held.split("-")[1])
        assert step >= 4
        _assert_inside_write(folder, held, ["ckpt-1", "ckpt-2"])
        assert process.poll() is None  # the first Ctrl-C did not stop the process
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted", err[-2000:]
    assert "saved" not in err and "Traceback" not in err
    assert hold.exists()  # stopped inside the write: the save never went on
    assert listed_checkpoints(str(folder)) == ["ckpt-1", "ckpt-2"]
    assert assert_checkpoint_loads(folder) == str(folder / "ckpt-2")
    after = tree_digest(folder)
    for name, digest in before.items():
        if name != "facegan_run.json":  # rewritten atomically by every save
            assert after[name] == digest, name


def test_first_ctrl_c_inside_a_checkpoint_write_lets_the_write_finish(tmp_path, monkeypatch):
    """Row 30, first half: a Ctrl-C that arrives while a checkpoint write holds only marks the
    request; the write completes and is listed, and the loop's next safe point raises
    `TrainingInterrupted` naming it."""
    step = tf.Variable(1, dtype=tf.int64)
    manager = TrainingCheckpoint(str(tmp_path / "ckpt"), "cyclegan", {}, step=step)
    manager.save(1)
    hold = tmp_path / "hold"
    monkeypatch.setenv(HOLD_ENV, str(hold))
    # The session may run with SIGINT ignored (nohup); this test needs Python's own handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    seen = []

    def ctrl_c_inside_the_write(request):
        deadline = time.monotonic() + 60
        while not hold.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(os.path.basename(hold.read_text()))
        os.kill(os.getpid(), signal.SIGINT)
        while not request.requested and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(listed_checkpoints(str(tmp_path / "ckpt")))
        hold.unlink()  # the write goes on

    thread = None
    try:
        with pytest.raises(guards.TrainingInterrupted) as info:
            with guards.interruptible(lambda: manager.latest, lambda: int(step.numpy())) as request:
                thread = threading.Thread(target=ctrl_c_inside_the_write, args=(request,))
                thread.start()
                step.assign(2)
                path = manager.save(2)
                assert request.requested
                request.raise_if_requested()
    finally:
        signal.signal(signal.SIGINT, previous)
        if thread is not None:
            thread.join(timeout=60)
    assert seen == ["ckpt-2", ["ckpt-1"]]  # the Ctrl-C came while ckpt-2 was being written
    assert listed_checkpoints(str(tmp_path / "ckpt")) == ["ckpt-1", "ckpt-2"]
    assert info.value.step == 2 and info.value.checkpoint == path
    assert assert_checkpoint_loads(tmp_path / "ckpt") == path
