"""``run_status.json``: written before the first step, updated when training ends, and left
at ``started`` when the process dies where Python cannot see it (an abort)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from facegan_tf.training.checkpointing import RUN_STATUS_FILE, TrainingCheckpoint, run_status
from facegan_tf.training.guards import NonFiniteLossError, TrainingInterrupted

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = {"fine_size": 256, "ngf": 4}


def _read(folder):
    with open(os.path.join(folder, RUN_STATUS_FILE), encoding="utf-8") as f:
        return json.load(f)


def _checkpoint(folder, enabled=True):
    return TrainingCheckpoint(str(folder), "cyclegan", CONFIG, enabled=enabled)


def test_started_before_the_body_then_completed(tmp_path):
    step = tf.Variable(7, dtype=tf.int64)
    with run_status(_checkpoint(tmp_path), step) as path:
        during = _read(tmp_path)
        step.assign(9)
    assert path == os.path.join(str(tmp_path), RUN_STATUS_FILE)
    assert during["state"] == "started"
    assert during["pid"] == os.getpid()
    assert (during["kind"], during["config"]) == ("cyclegan", CONFIG)
    assert during["start_step"] == during["step"] == 7
    assert isinstance(during["onednn"], bool)
    after = _read(tmp_path)
    assert after["state"] == "completed"
    assert (after["start_step"], after["step"]) == (7, 9)


@pytest.mark.parametrize(
    "error, state",
    [
        (TrainingInterrupted(3, "ckpt-3"), "interrupted"),
        (KeyboardInterrupt(), "interrupted"),
        (NonFiniteLossError(3, ["g_loss"], None), "failed"),
        (MemoryError("out of memory"), "failed"),
    ],
)
def test_interrupted_or_failed_and_the_error_propagates(tmp_path, error, state):
    step = tf.Variable(2, dtype=tf.int64)
    with pytest.raises(type(error)):
        with run_status(_checkpoint(tmp_path), step):
            step.assign(3)
            raise error
    status = _read(tmp_path)
    assert (status["state"], status["step"]) == (state, 3)
    if state == "failed":
        assert status["error"].startswith(type(error).__name__ + ": ")


def test_non_chief_writes_nothing(tmp_path):
    with run_status(_checkpoint(tmp_path / "run", enabled=False), tf.Variable(0)):
        pass
    assert not (tmp_path / "run" / RUN_STATUS_FILE).exists()


def test_an_abort_leaves_started_with_the_dead_process_id(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        import tensorflow as tf
        from facegan_tf.training.checkpointing import TrainingCheckpoint, run_status
        checkpoint = TrainingCheckpoint({str(tmp_path)!r}, "cyclegan", {{"ngf": 4}})
        with run_status(checkpoint, tf.Variable(0, dtype=tf.int64)):
            os.abort()
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode < 0  # killed by SIGABRT, no Python error
    status = _read(tmp_path)
    assert status["state"] == "started"
    assert status["pid"] != os.getpid()
    assert status["config"] == {"ngf": 4}
