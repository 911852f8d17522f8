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
