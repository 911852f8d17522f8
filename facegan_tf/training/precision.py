"""Mixed precision (``--mixed_precision``): float16 compute, float32 variables and losses.

Models built inside `dtype_policy(True)` use Keras' ``mixed_float16`` policy: their
variables stay float32 while layers compute in float16. Trainers cast model outputs to
float32 (`to_float32`) before any loss, so every loss, metric and summary is float32, and
wrap each optimizer in `loss_scaled`, a dynamic `keras.optimizers.LossScaleOptimizer`:
the loss is multiplied by the scale before differentiation (``optimizer.scale_loss``), the
gradients are divided by it in ``apply_gradients``, and a step whose gradients are not
finite is skipped while the scale is halved. ``scale_loss`` is the identity on an
unwrapped optimizer, so a train step can call it unconditionally.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

MIXED_POLICY = "mixed_float16"


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool):
    """Within the block, newly built layers use ``mixed_float16`` if ``mixed_precision``.

    The previous global policy is restored on exit, so models built later (or in another
    test) are unaffected.
    """
    if not mixed_precision:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(MIXED_POLICY)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scaled(optimizer: keras.optimizers.Optimizer, mixed_precision: bool):
    """``optimizer`` wrapped in a dynamic loss-scale optimizer when ``mixed_precision``."""
    if not mixed_precision:
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that owns the slot variables (the wrapped one for a loss-scale
    optimizer), e.g. to save Adam's moments under the same checkpoint key in either
    precision."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def to_float32(structure):
    """Casts every floating tensor of a nested structure to float32."""

    def cast(value):
        value = tf.convert_to_tensor(value)
        return tf.cast(value, tf.float32) if value.dtype.is_floating else value

    return tf.nest.map_structure(cast, structure)


#: Checkpoint key of the dynamic loss-scale state (present only in mixed-precision runs).
LOSS_SCALE_KEY = "loss_scale"


def checkpoint_optimizers(**optimizers: keras.optimizers.Optimizer) -> dict:
    """Checkpoint entries for a run's optimizers that read the same in either precision.

    Each name maps to the optimizer owning the slots (`inner_optimizer`), so Adam's moments
    and iteration count sit under the same key in float32 and mixed-precision runs. When an
    optimizer is loss-scaled, ``LOSS_SCALE_KEY`` maps to its dynamic scale
    (``<name>_scale``) and its count of finite steps since the last change
    (``<name>_good_steps``). A float32 run restoring a mixed-precision checkpoint ignores
    that entry; a mixed-precision run restoring a float32 checkpoint starts from a fresh
    scale (see `lacks_loss_scale`).
    """
    entries: dict = {name: inner_optimizer(o) for name, o in optimizers.items()}
    state = {}
    for name, optimizer in optimizers.items():
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            state[f"{name}_scale"] = optimizer.dynamic_scale
            state[f"{name}_good_steps"] = optimizer.step_counter
    if state:
        entries[LOSS_SCALE_KEY] = state
    return entries


def lacks_loss_scale(objects: dict, path: str | None) -> bool:
    """True when ``objects`` hold loss-scale state but the checkpoint ``path`` has none (it
    was written by a float32 run); the caller then restores ``objects`` without it."""
    if not path or LOSS_SCALE_KEY not in objects:
        return False
    try:
        names = [name for name, _ in tf.train.list_variables(path)]
    except (tf.errors.OpError, ValueError):
        return False  # let the regular restore report the unreadable checkpoint
    return not any(name.split("/")[0] == LOSS_SCALE_KEY for name in names)


def without_loss_scale(objects: dict) -> dict:
    return {name: obj for name, obj in objects.items() if name != LOSS_SCALE_KEY}


def restore_in_either_precision(
    directory: str, path: str | None, checkpoint, objects: dict, make_checkpoint
) -> str:
    """Restores ``path`` (default: the latest checkpoint of ``directory``) into ``objects``.

    ``checkpoint`` saves ``objects``; ``make_checkpoint(objects)`` builds another over a
    subset. A checkpoint written by a float32 run has no loss-scale state: everything else
    is restored and the scale starts fresh.

    Raises:
        FileNotFoundError: ``directory`` holds no checkpoint and no ``path`` was given.
    """
    path = path or tf.train.latest_checkpoint(directory)
    if path is None:
        raise FileNotFoundError(f"No checkpoint to resume from in {directory!r}.")
    if lacks_loss_scale(objects, path):
        return make_checkpoint(without_loss_scale(objects)).restore(path)
    return checkpoint.restore(path)
