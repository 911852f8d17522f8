"""Resumable training checkpoints.

A run folder holds TF object-graph checkpoints ``ckpt-<step>.{index,data-*}`` written by
`tf.train.CheckpointManager`, its ``checkpoint`` state file, and ``facegan_run.json`` naming
the model kind and the resolved config that built the models. TF writes the data and index
files before it atomically replaces the state file, so a crash during a save leaves the
previous checkpoint as the latest one; ``facegan_run.json`` is written atomically too.
"""

from __future__ import annotations

import os

import tensorflow as tf

from facegan_tf.fileio import read_json, write_json_atomic

RUN_INFO_FILE = "facegan_run.json"
STATE_FILE = "checkpoint"


class CheckpointKindError(ValueError):
    """A checkpoint folder holds another model kind than the one asked for."""


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
    checkpoint = tf.train.Checkpoint(**as_trackables(models))
    try:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
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
        self.directory = directory
        self.kind = kind
        self.config = config
        self.enabled = enabled
        self.checkpoint = tf.train.Checkpoint(**as_trackables(objects))
        save_dir = (
            directory if enabled else os.path.join(directory, ".worker_tmp", str(os.getpid()))
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, save_dir, max_to_keep=max_to_keep, checkpoint_name="ckpt"
        )

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def save(self, step: int) -> str:
        if self.enabled:
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
        return self.manager.save(checkpoint_number=int(step))

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
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ValueError(
                f"Checkpoint {path!r} does not fit this {self.kind} model (different widths, "
                f"architecture or a damaged file): {str(error).splitlines()[0][:400]}"
            ) from error
        return path
