"""Reading legacy TF1 checkpoints by variable name, strictly in both directions.

A converter pairs every weight of the target Keras models with one TF1 tensor name. The
loader then checks, before assigning anything:

* every target weight is paired exactly once;
* every paired tensor exists in the checkpoint with the weight's shape;
* every checkpoint tensor is consumed or matches an explicit ignore pattern.

Any violation raises `LegacyCheckpointError` listing what did not match, so a checkpoint of
another model kind or width is refused with a readable message and no weight is half-set.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

STATE_FILE = "checkpoint"

#: Tensors a TF1 training script may add next to the model weights.
OPTIMIZER_IGNORE_PATTERNS = (
    r".*/Adam(_\d+)?$",
    r"^beta[12]_power(_\d+)?$",
    r"^global_step$",
)


class LegacyCheckpointError(ValueError):
    """A TF1 checkpoint does not fit the model it is loaded into."""


def resolve_checkpoint_prefix(path: str) -> str:
    """Returns the checkpoint prefix for a folder or a prefix.

    A folder is resolved through its ``checkpoint`` state file like the originals do: the
    basename of ``model_checkpoint_path`` joined to the folder, so state files written on
    another machine (absolute or relative paths) still work. Without a state file, the
    folder's newest ``*.index`` file is used.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        state = os.path.join(path, STATE_FILE)
        if os.path.isfile(state):
            with open(state, encoding="utf-8") as f:
                for line in f:
                    match = re.match(r'\s*model_checkpoint_path:\s*"(.*)"\s*$', line)
                    if match:
                        candidate = os.path.join(path, os.path.basename(match.group(1)))
                        if os.path.isfile(candidate + ".index"):
                            return candidate
        indexes = sorted(
            (f for f in os.listdir(path) if f.endswith(".index")),
            key=lambda name: os.path.getmtime(os.path.join(path, name)),
        )
        if indexes:
            return os.path.join(path, indexes[-1][: -len(".index")])
        raise FileNotFoundError(
            f"No TF checkpoint in folder {path!r}: expected a 'checkpoint' state file or a "
            "'<prefix>.index' file."
        )
    if os.path.isfile(path + ".index"):
        return path
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    raise FileNotFoundError(
        f"No TF checkpoint at {path!r}: expected a folder holding one, or a prefix P with a "
        "file P.index next to P.data-00000-of-00001."
    )


class LegacyCheckpoint:
    """A TF1 checkpoint opened for reading by tensor name.

    Args:
        path: a checkpoint folder or prefix (see `resolve_checkpoint_prefix`).
    """

    def __init__(self, path: str):
        self.prefix = resolve_checkpoint_prefix(path)
        try:
            self._reader = tf.train.load_checkpoint(self.prefix)
        except (tf.errors.OpError, ValueError) as error:
            raise LegacyCheckpointError(
                f"Cannot read TF checkpoint {self.prefix!r}: {error}"
            ) from error
        self.shapes: dict[str, tuple[int, ...]] = {
            name: tuple(shape) for name, shape in self._reader.get_variable_to_shape_map().items()
        }

    def __contains__(self, name: str) -> bool:
        return name in self.shapes

    def names(self) -> list[str]:
        return sorted(self.shapes)

    def get(self, name: str) -> np.ndarray:
        if name not in self.shapes:
            raise LegacyCheckpointError(f"Tensor {name!r} is not in checkpoint {self.prefix!r}.")
        try:
            return np.asarray(self._reader.get_tensor(name))
        except (tf.errors.OpError, ValueError) as error:
            raise LegacyCheckpointError(
                f"Cannot read tensor {name!r} from {self.prefix!r} (damaged or truncated data "
                f"file?): {error}"
            ) from error


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """One target weight and the TF1 tensor it is filled from."""

    variable: object  # keras.Variable
    tf1_name: str
    label: str  # human-readable target name for error messages


@dataclasses.dataclass
class LoadReport:
    """What a strict load consumed and skipped."""

    prefix: str
    loaded: list[str]
    ignored: list[str]


def load_strict(
    checkpoint: LegacyCheckpoint,
    sources: Sequence[WeightSource],
    all_target_variables: Iterable[object],
    ignore_patterns: Sequence[str] = (),
) -> LoadReport:
    """Assigns checkpoint tensors to Keras variables after checking both directions.

    Args:
        checkpoint: the opened TF1 checkpoint.
        sources: one `WeightSource` per target weight.
        all_target_variables: every weight of the target models; each must appear in
            ``sources`` exactly once.
        ignore_patterns: regular expressions (full match) of checkpoint tensors that are
            deliberately not loaded (optimiser slots, batch-norm bookkeeping).

    Raises:
        LegacyCheckpointError: listing missing tensors, shape mismatches, unpaired weights
            and unexpected checkpoint tensors. Nothing is assigned in that case.
    """
    problems: list[str] = []
    by_id = {id(source.variable): source for source in sources}
    if len(by_id) != len(sources):
        problems.append("a target weight is paired with more than one checkpoint tensor")
    targets = list(all_target_variables)
    for variable in targets:
        if id(variable) not in by_id:
            problems.append(f"target weight {getattr(variable, 'path', variable)} has no source")
    used: set[str] = set()
    values: list[tuple[WeightSource, np.ndarray]] = []
    for source in sources:
        if source.tf1_name in used:
            problems.append(f"checkpoint tensor {source.tf1_name} is used twice")
        used.add(source.tf1_name)
        if source.tf1_name not in checkpoint:
            problems.append(f"missing tensor {source.tf1_name} (for {source.label})")
            continue
        expected = tuple(source.variable.shape)
        stored = checkpoint.shapes[source.tf1_name]
        if stored != expected:
            problems.append(
                f"shape mismatch for {source.tf1_name}: checkpoint {list(stored)}, "
                f"model {source.label} expects {list(expected)}"
            )
            continue
        values.append((source, checkpoint.get(source.tf1_name)))
    compiled = [re.compile(pattern) for pattern in ignore_patterns]
    ignored = []
    for name in checkpoint.names():
        if name in used:
            continue
        if any(pattern.fullmatch(name) for pattern in compiled):
            ignored.append(name)
        else:
            problems.append(f"unexpected checkpoint tensor {name} {list(checkpoint.shapes[name])}")
    if problems:
        shown = problems[:12]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > 12 else ""
        raise LegacyCheckpointError(
            f"Checkpoint {checkpoint.prefix!r} does not fit the model "
            f"({len(problems)} problem(s)):\n  " + "\n  ".join(shown) + more
        )
    for source, value in values:
        source.variable.assign(value.astype(np.dtype(source.variable.dtype)))
    return LoadReport(
        prefix=checkpoint.prefix,
        loaded=sorted(s.tf1_name for s, _ in values),
        ignored=ignored,
    )
