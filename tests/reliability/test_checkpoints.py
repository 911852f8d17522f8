"""Checkpoints that do not fit, damaged files, disk full and read-only folders: a clear error
naming the file, and nothing already written is changed."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from facegan_tf.training import checkpointing
from facegan_tf.training.cyclegan import CycleGANConfig, build_cyclegan_models
from facegan_tf.training.cyclegan_inference import load_cyclegan_models
from tests.reliability.conftest import TINY, assert_checkpoint_loads, tree_digest


@pytest.fixture
def run_copy(cyclegan_run, tmp_path):
    """A private copy of the tiny run (tests may damage it) and the digest of the original."""
    root, checkpoint_dir, data = cyclegan_run
    before = tree_digest(checkpoint_dir)
    copy = tmp_path / "checkpoint"
    shutil.copytree(checkpoint_dir, copy)
    yield copy, data
    assert tree_digest(checkpoint_dir) == before


def test_checkpoint_of_another_model_kind_is_refused_naming_both(run_copy):
    copy, _ = run_copy
    before = tree_digest(copy)
    info = json.loads((copy / "facegan_run.json").read_text())
    models = build_cyclegan_models(CycleGANConfig(**{**TINY}))
    other = checkpointing.TrainingCheckpoint(str(copy), "dcgan", {}, **models)
    with pytest.raises(checkpointing.CheckpointKindError, match="holds a 'cyclegan' model, "
                       "expected 'dcgan'"):
        other.restore()
    with pytest.raises(checkpointing.CheckpointKindError, match="Refusing to save a 'dcgan'"):
        other.save(3)
    assert info["kind"] == "cyclegan"
    info["kind"] = "ipcgan"  # the same folder as another tool would have written it
    (copy / "facegan_run.json").write_text(json.dumps(info))
    with pytest.raises(checkpointing.CheckpointKindError, match="'ipcgan' model, expected "
                       "'cyclegan'"):
        load_cyclegan_models(str(copy))
    changed = tree_digest(copy)
    del changed["facegan_run.json"], before["facegan_run.json"]
    assert changed == before


def test_checkpoint_of_another_width_is_refused_and_left_intact(run_copy):
    copy, _ = run_copy
    before = tree_digest(copy)
    wider = build_cyclegan_models(CycleGANConfig(**{**TINY, "ngf": 8}))
    latest = tf.train.latest_checkpoint(str(copy))
    with pytest.raises(ValueError, match=r"does not fit the model") as info:
        checkpointing.restore_models(latest, generator_a2b=wider["generator_a2b"])
    assert latest in str(info.value) and "\n" not in str(info.value)
    assert tree_digest(copy) == before
    assert_checkpoint_loads(copy)


def test_truncated_checkpoint_data_file_is_refused_naming_it(run_copy):
    copy, _ = run_copy
    data_file = next(p for p in copy.iterdir() if p.name.startswith("ckpt-2.data"))
    size = data_file.stat().st_size
    with open(data_file, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError, match=r"ckpt-2' does not fit the model .*damaged file"):
        load_cyclegan_models(str(copy))


def test_saves_keep_the_newest_and_every_listed_checkpoint_loads(run_copy):
    copy, _ = run_copy
    models = build_cyclegan_models(CycleGANConfig(**TINY))
    step = tf.Variable(0, dtype=tf.int64)
    manager = checkpointing.TrainingCheckpoint(
        str(copy), "cyclegan", {}, max_to_keep=3, step=step, **models
    )
    (copy / "ckpt-9_temp").mkdir()  # left by a save killed mid-way
    for value in range(3, 8):
        step.assign(value)
        manager.save(value)
    assert checkpointing.listed_checkpoints(str(copy)) == ["ckpt-5", "ckpt-6", "ckpt-7"]
    names = sorted(p.name for p in copy.iterdir())
    assert [n for n in names if n.startswith("ckpt-")] == [
        f"ckpt-{i}.{ext}" for i in (5, 6, 7) for ext in ("data-00000-of-00001", "index")
    ]
    assert_checkpoint_loads(copy)
    state = (copy / "checkpoint").read_text()
    assert str(copy) not in state  # relative paths: the folder can be moved
    moved = copy.parent / "moved elsewhère"
    shutil.move(str(copy), str(moved))
    assert tf.train.latest_checkpoint(str(moved)) == str(moved / "ckpt-7")


_DISK_FULL_CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    sys.path.insert(0, {repo!r})
    from facegan_tf.training.checkpointing import CheckpointWriteError
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer
    config = CycleGANConfig(**json.loads({config!r}))
    trainer = CycleGANTrainer(config)
    trainer.restore()
    trainer.step.assign(50)
    # Every write beyond 64 KiB now fails with EFBIG, as on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    try:
        trainer.save()
    except CheckpointWriteError as error:
        print(json.dumps({{"error": str(error)}}))
    else:
        print(json.dumps({{"error": None}}))
    """
)


def test_disk_full_while_saving_keeps_the_previous_checkpoint(run_copy, tmp_path):
    """Disk full is simulated in a child process by RLIMIT_FSIZE with SIGXFSZ ignored, so the
    checkpoint write fails with EFBIG exactly like a write on a full disk (ENOSPC)."""
    copy, data = run_copy
    before = tree_digest(copy)
    config = CycleGANConfig(
        **{**TINY, "dataset_dir": str(data), "checkpoint_dir": str(copy),
           "sample_dir": str(tmp_path / "s"), "log_dir": str(tmp_path / "l")}
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = _DISK_FULL_CHILD.format(repo=repo, config=json.dumps(config.to_dict()))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error is not None
    assert "ckpt-50" in error and "File too large" in error
    assert "ckpt-2' is unchanged and still the latest" in error
    after = tree_digest(copy)
    # The run file is rewritten atomically by every save (here with the child's folders).
    assert json.loads((copy / "facegan_run.json").read_text())["kind"] == "cyclegan"
    del after["facegan_run.json"], before["facegan_run.json"]
    assert after == before  # nothing of the failed save is left, nothing else changed
    assert assert_checkpoint_loads(copy).endswith("ckpt-2")


def test_read_only_or_impossible_checkpoint_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    models = build_cyclegan_models(CycleGANConfig(**TINY))
    target = blocker / "checkpoint"
    with pytest.raises(PermissionError, match=r"Checkpoint folder '.*a_file/checkpoint' is not "
                       "writable"):
        checkpointing.TrainingCheckpoint(str(target), "cyclegan", {}, **models)
    assert blocker.read_text() == "not a folder"
    if os.geteuid() != 0:  # chmod does not stop root; the regular-file parent above does
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            with pytest.raises(PermissionError, match="is not writable"):
                checkpointing.TrainingCheckpoint(str(folder), "cyclegan", {}, **models)
        finally:
            folder.chmod(0o755)
