"""The run guards (non-finite losses, Ctrl-C) and the mixed-precision helpers."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training import guards, precision


def test_check_finite_names_the_step_and_every_bad_loss():
    guards.check_finite(7, {"g": 1.0, "d": np.float32(0.5)}, "ckpt-6")
    with pytest.raises(guards.NonFiniteLossError) as raised:
        guards.check_finite(
            8, {"g": math.inf, "d": 0.1, "cycle": tf.constant(float("nan"))}, "run/ckpt-6"
        )
    error = raised.value
    assert error.step == 8 and error.names == ["g", "cycle"]
    assert "step 8" in str(error) and "'run/ckpt-6'" in str(error)
    assert isinstance(error, ValueError)


def test_save_on_interrupt_saves_once_and_reports_the_step():
    saved = []

    def save():
        saved.append(True)
        return "run/ckpt-12"

    with pytest.raises(guards.TrainingInterrupted) as raised:
        with guards.save_on_interrupt(save, lambda: 12):
            raise KeyboardInterrupt
    assert saved == [True]
    assert raised.value.step == 12 and "'run/ckpt-12'" in str(raised.value)

    with guards.save_on_interrupt(save, lambda: 0):
        pass
    assert saved == [True]


def test_mixed_policy_applies_inside_the_block_only():
    with precision.dtype_policy(True):
        inside = keras.layers.Dense(2)
    outside = keras.layers.Dense(2)
    assert inside.dtype_policy.name == "mixed_float16"
    assert outside.dtype_policy.name == keras.config.dtype_policy().name == "float32"
    inside.build((None, 3))
    assert inside.kernel.dtype == "float32" and inside.compute_dtype == "float16"


def test_loss_scaling_wraps_only_in_mixed_precision():
    adam = keras.optimizers.Adam(1e-3)
    assert precision.loss_scaled(adam, False) is adam
    wrapped = precision.loss_scaled(adam, True)
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    assert precision.inner_optimizer(wrapped) is adam
    assert float(wrapped.scale_loss(tf.constant(2.0))) == 2.0 * 32768.0
    casted = precision.to_float32({"a": tf.constant([1.0], tf.float16), "n": tf.constant([1])})
    assert casted["a"].dtype == tf.float32 and casted["n"].dtype == tf.int32
