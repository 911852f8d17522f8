"""Resumable training checkpoints.

A run folder holds TF object-graph checkpoints ``ckpt-<step>.{index,data-*}``, the
``checkpoint`` state file that `tf.train.latest_checkpoint` reads, and ``facegan_run.json``
naming the model kind and the resolved config that built the models.

A save is crash-safe at every moment (SIGKILL, power loss after the write returned):

1. TF writes ``ckpt-<step>`` (through a ``ckpt-<step>_temp/`` folder it renames); the files
   are then fsync'ed. Nothing refers to them yet, so a kill here leaves the previous state.
2. The state file is replaced atomically (temporary file, fsync, rename) by one that lists
   only the checkpoints kept (the newest ``max_to_keep``) with the new one as the latest.
3. Only then are the files of checkpoints no longer listed deleted.

So the state file never names a checkpoint that is incomplete or being deleted: the latest
checkpoint and every one listed stay loadable whatever moment a process dies.
`tf.train.CheckpointManager` deletes old checkpoints before its final state write, so a kill
during its clean-up leaves listed checkpoints without files; that is why it is not used.
Leftover ``*_temp`` folders of an interrupted save are removed by the next save.

Setting the environment variable ``FACEGAN_CHECKPOINT_HOLD`` to a file path makes every save
stop between steps 1 and 2: it writes that file (holding the checkpoint's path) and waits
until the file is removed. The crash-safety tests and ``bench/soak.py`` use it to kill or
interrupt a training process at a known moment inside a checkpoint write.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import socket
import sys
import tempfile
import time

import tensorflow as tf

from facegan_tf.fileio import atomic_write, read_json, write_json_atomic
from facegan_tf.layers import onednn_enabled

RUN_INFO_FILE = "facegan_run.json"
RUN_STATUS_FILE = "run_status.json"
STATE_FILE = "checkpoint"
CHECKPOINT_NAME = "ckpt"
#: Environment variable naming the marker file of `hold_inside_write`.
HOLD_ENV = "FACEGAN_CHECKPOINT_HOLD"
_STATE_LINE = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"(.*)"\s*$')


class CheckpointKindError(ValueError):
    """A checkpoint folder holds another model kind than the one asked for."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, file size limit, read-only file system);
    the previous checkpoint is untouched and still the latest."""


def read_run_info(directory: str) -> dict | None:
    """The run info of a checkpoint folder of ours, or None if it is not one."""
    path = os.path.join(directory, RUN_INFO_FILE)
    if not os.path.isfile(path):
        return None
    info = read_json(path)
    if not isinstance(info, dict) or "kind" not in info:
        raise ValueError(f"{path!r} is not a facegan_tf run file (no 'kind').")
    return info


def check_run_kind(directory: str, expected_kind: str) -> dict:
    """Returns the run info of ``directory`` after checking it holds ``expected_kind``."""
    info = read_run_info(directory)
    if info is None:
        raise FileNotFoundError(
            f"{directory!r} is not a facegan_tf checkpoint folder (no {RUN_INFO_FILE})."
        )
    if info["kind"] != expected_kind:
        raise CheckpointKindError(
            f"Checkpoint folder {directory!r} holds a {info['kind']!r} model, expected "
            f"{expected_kind!r}."
        )
    return info


def trackable_variables(model) -> dict:
    """The variables of a Keras model as a dict keyed by variable path.

    Keras 3 models keep layers held in Python lists outside TF's object graph, so a
    `tf.train.Checkpoint` of the model object would silently miss their weights. Saving
    this dict instead records every variable under its stable path (e.g.
    ``generator_a2b/g_r1_c1/kernel``).
    """
    variables = {variable.path: variable for variable in model.weights}
    if len(variables) != len(model.weights):
        raise ValueError(f"Model {model.name!r} has two weights with one path.")
    weight_ids = {id(variable) for variable in model.weights}
    others = [variable for variable in model.variables if id(variable) not in weight_ids]
    for index, variable in enumerate(others):
        # Random-state variables (dropout seeds) have process-global names; number them.
        variables[f"random_state_{index}"] = variable
    return variables


def as_trackables(objects: dict) -> dict:
    """Replaces every Keras model in ``objects`` by `trackable_variables` of it."""
    import keras

    return {
        name: trackable_variables(obj) if isinstance(obj, keras.Model) else obj
        for name, obj in objects.items()
    }


def restore_models(path: str, **models) -> None:
    """Restores only the given Keras models from a `TrainingCheckpoint` file.

    Raises:
        ValueError: a variable of a model is missing from the checkpoint or has another
            shape.
    """
    restore_trackables(path, **as_trackables(models))


def restore_trackables(path: str, **trackables) -> None:
    """Restores only the given trackables (keyed as in the checkpoint) from a
    `TrainingCheckpoint` file; errors as `restore_models`."""
    checkpoint = tf.train.Checkpoint(**trackables)
    try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
        raise ValueError(
            f"Checkpoint {path!r} does not fit the model (different widths, architecture or a "
            f"damaged file): {str(error).splitlines()[0][:400]}"
        ) from error


class TrainingCheckpoint:
    """Everything needed to resume a run exactly, saved and restored as one unit.

    Args:
        directory: the checkpoint folder.
        kind: model kind written to ``facegan_run.json`` (e.g. ``"cyclegan"``).
        config: JSON-serialisable resolved config, written next to the checkpoints.
        max_to_keep: how many checkpoints to keep.
        enabled: False on non-chief workers, which then save to a temporary folder (every
            worker must take part in the save under multi-worker strategies).
        **objects: trackables (optimisers, variables, modules) and Keras models to save;
            models are saved through `trackable_variables`.
    """

    def __init__(
        self,
        directory: str,
        kind: str,
        config: dict,
        max_to_keep: int = 5,
        enabled: bool = True,
        **objects,
    ):
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1. Received: max_to_keep={max_to_keep}")
        self.directory = directory
        self.kind = kind
        self.config = config
        self.enabled = enabled
        self.max_to_keep = max_to_keep
        self.checkpoint = tf.train.Checkpoint(**as_trackables(objects))
        # Created now so that every checkpoint holds it and every restore matches it
        # (`tf.train.Checkpoint.write` saves it only once something has created it).
        _ = self.checkpoint.save_counter
        self.save_dir = (
            directory if enabled else os.path.join(directory, ".worker_tmp", str(os.getpid()))
        )
        if enabled:
            ensure_writable_folder(directory, "Checkpoint folder")

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def save(self, step: int) -> str:
        """Writes ``ckpt-<step>`` crash-safely (see the module docstring); returns its path."""
        if self.enabled:
            os.makedirs(self.directory, exist_ok=True)
            existing = read_run_info(self.directory) if os.path.isdir(self.directory) else None
            if existing is not None and existing.get("kind") != self.kind:
                raise CheckpointKindError(
                    f"Refusing to save a {self.kind!r} checkpoint into {self.directory!r}, "
                    f"which holds a {existing.get('kind')!r} run."
                )
            write_json_atomic(
                os.path.join(self.directory, RUN_INFO_FILE),
                {"kind": self.kind, "config": self.config},
            )
            remove_stale_temp_folders(self.save_dir)
        os.makedirs(self.save_dir, exist_ok=True)
        name = f"{CHECKPOINT_NAME}-{int(step)}"
        self.checkpoint.save_counter.assign_add(1)
        prefix = os.path.join(self.save_dir, name)
        listed = [n for n in listed_checkpoints(self.save_dir) if n != name]
        try:
            path = self.checkpoint.write(prefix)
            if not self.enabled:
                return path
            for file in checkpoint_files(path):
                _fsync(file)
            hold_inside_write(path)
            listed = [
                n for n in listed if os.path.isfile(os.path.join(self.save_dir, n + ".index"))
            ]
            kept = (listed + [name])[-self.max_to_keep :]
            write_checkpoint_state(self.save_dir, kept)
        except (OSError, tf.errors.OpError) as error:
            # Remove what this save wrote; the state file still names the previous one.
            shutil.rmtree(prefix + "_temp", ignore_errors=True)
            if name not in listed_checkpoints(self.save_dir):
                for file in checkpoint_files(prefix):
                    with contextlib.suppress(OSError):
                        os.remove(file)
            previous = tf.train.latest_checkpoint(self.save_dir)
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
            raise CheckpointWriteError(
                getattr(error, "errno", None) or errno.EIO,
                f"Could not write checkpoint {prefix!r} ({reason[-300:]}); the previous "
                f"checkpoint {previous!r} is unchanged and still the latest. Free disk space "
                "or fix the folder, then resume with --continue_train.",
            ) from error
        for dropped in listed:
            if dropped not in kept:
                for file in checkpoint_files(os.path.join(self.save_dir, dropped)):
                    os.remove(file)
        return path

    def restore(self, path: str | None = None) -> str:
        """Restores ``path`` (default: the latest checkpoint) and checks every object matched.

        Raises:
            FileNotFoundError: there is no checkpoint to restore.
            ValueError: the checkpoint does not fit the objects (other kind or widths).
        """
        path = path or self.latest
        if path is None:
            raise FileNotFoundError(f"No checkpoint to resume from in {self.directory!r}.")
        info = read_run_info(os.path.dirname(path))
        if info is not None and info.get("kind") != self.kind:
            raise CheckpointKindError(
                f"Checkpoint {path!r} holds a {info.get('kind')!r} model, expected {self.kind!r}."
            )
        try:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
            raise ValueError(
                f"Checkpoint {path!r} does not fit this {self.kind} model (different widths, "
                f"architecture or a damaged file): {str(error).splitlines()[0][:400]}"
            ) from error
        return path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _step_value(step) -> int | None:
    try:
        return int(step.numpy())
    except Exception:  # noqa: BLE001 - the status must be written whatever broke
        return None


@contextlib.contextmanager
def run_status(checkpoint: TrainingCheckpoint, step: tf.Variable):
    """Records the life of a training process in ``run_status.json`` of the run folder.

    Before the body (the training loop) runs, the file says ``"state": "started"`` with the
    model kind, the resolved config, the step training starts from, the process id, host,
    command line, TensorFlow version and whether oneDNN is on. When the body ends it is
    rewritten with ``"completed"``, ``"interrupted"`` (Ctrl-C) or ``"failed"`` (a Python
    exception, named in ``"error"``) and the step reached; a failing final write never hides
    the exception that ended training. A run that fails before it saved anything, in a
    folder it created, removes the file and those folders again (a refused run leaves
    nothing). A file still saying ``"started"`` while no process ``pid`` runs means the
    process died where Python could not see it: a TensorFlow abort (``Check failed``), a
    segmentation fault, SIGKILL or the out-of-memory killer (docs/troubleshooting.md). Only
    the chief writes (non-chief workers of a multi-worker run have ``checkpoint.enabled``
    false).

    Args:
        checkpoint: the trainer's `TrainingCheckpoint` (folder, kind and config).
        step: the trainer's step variable.
    """
    path = os.path.join(checkpoint.directory, RUN_STATUS_FILE)
    status = {
        "state": "started",
        "kind": checkpoint.kind,
        "start_step": int(step.numpy()),
        "step": int(step.numpy()),
        "started": _now(),
        "updated": _now(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "tensorflow": tf.__version__,
        "onednn": onednn_enabled(),
        "config": checkpoint.config,
    }

    def write(**changes) -> None:
        if checkpoint.enabled:
            status.update(changes, updated=_now())
            write_json_atomic(path, status)

    created = _missing_folders(checkpoint.directory)
    write()
    try:
        yield path
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            write(state="interrupted", step=_step_value(step))
        raise
    except BaseException as error:
        message = str(error).strip().splitlines()
        with contextlib.suppress(OSError):
            write(
                state="failed",
                step=_step_value(step),
                error=f"{type(error).__name__}: {message[0][:500] if message else ''}",
            )
        if created and os.listdir(checkpoint.directory) == [RUN_STATUS_FILE]:
            # Refused before anything was saved (e.g. a missing data folder): leave no trace.
            os.remove(path)
            for folder in created:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        raise
    write(state="completed", step=_step_value(step))


def _missing_folders(directory: str) -> list[str]:
    """``directory`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    folder = os.path.abspath(directory)
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def listed_checkpoints(directory: str) -> list[str]:
    """Names of the checkpoints the state file of ``directory`` lists, oldest first (the
    latest last)."""
    state = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(state):
        return []
    latest, names = None, []
    with open(state, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _STATE_LINE.match(line)
            if match is None:
                continue
            name = os.path.basename(match.group(2))
            if match.group(1) == "model_checkpoint_path":
                latest = name
            elif name not in names:
                names.append(name)
    if latest is not None:
        names = [n for n in names if n != latest] + [latest]
    return names


def write_checkpoint_state(directory: str, names: list[str]) -> None:
    """Atomically writes the ``checkpoint`` state file listing ``names`` (the last is the
    latest), in the text format `tf.train.latest_checkpoint` reads, with relative paths so
    the folder can be moved or copied to another machine."""
    with atomic_write(os.path.join(directory, STATE_FILE)) as f:
        f.write(f'model_checkpoint_path: "{names[-1]}"\n')
        for name in names:
            f.write(f'all_model_checkpoint_paths: "{name}"\n')


def checkpoint_files(prefix: str) -> list[str]:
    """The ``.index`` and ``.data-*`` files of the checkpoint ``prefix``."""
    files = glob.glob(glob.escape(prefix) + ".data-*")
    index = prefix + ".index"
    return sorted(files) + ([index] if os.path.exists(index) else [])


def remove_stale_temp_folders(directory: str) -> None:
    """Removes ``<checkpoint>_temp`` folders that a save killed mid-way left behind."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith(CHECKPOINT_NAME + "-") and name.endswith("_temp"):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def ensure_writable_folder(directory: str, what: str) -> None:
    """Checks a file can be created in ``directory`` (creating it for the test and removing
    again the folders the test created), so that a run is refused before training rather
    than at its first save, and a run refused for another reason leaves nothing behind.

    Raises:
        PermissionError: the folder (or a parent) is read-only, or its path runs through a
            regular file; the message names the folder.
    """
    created = []
    parent = os.path.abspath(directory)
    while not os.path.exists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
        for folder in created:
            os.rmdir(folder)
    except OSError as error:
        raise PermissionError(
            f"{what} {directory!r} is not writable ({error.strerror or error}); expected a "
            "folder this user can create files in."
        ) from error


def hold_inside_write(path: str) -> None:
    """Pauses a save whose files are written but not yet listed, when ``FACEGAN_CHECKPOINT_HOLD``
    names a marker file: writes ``path`` into the marker, then waits until the marker is
    removed. A process killed or interrupted here is inside the write (see the module
    docstring)."""
    marker = os.environ.get(HOLD_ENV)
    if not marker:
        return
    with atomic_write(marker) as f:
        f.write(path)
    while os.path.exists(marker):
        time.sleep(0.01)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
