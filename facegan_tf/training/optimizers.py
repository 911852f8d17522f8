"""Adam as TF1's ``tf.train.AdamOptimizer`` ran it: one fused ``ResourceApplyAdam`` per
variable.

Kingma & Ba (2015), Algorithm 1 with the "epsilon hat" form of section 2 (TF1's)::

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    w <- w - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)

`TF1Adam` is a `keras.optimizers.Adam` (same slots, names and checkpoint keys: the moments
``<path>_momentum`` / ``<path>_velocity`` and ``iterations``) whose update of each variable
is the single kernel the original graphs executed, ``ResourceApplyAdam``, instead of Keras'
composite of about ten ops per variable. ``beta1^t`` and ``beta2^t`` are computed once per
update from the step count ``t = iterations + 1`` (TF1 kept them as two variables multiplied
by beta at every step; the two differ by float32 rounding of the power, a relative 1e-7 per
step). ``amsgrad`` and weight decay fall back to Keras' update.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _resource(variable):
    """The resource handle of a Keras or TensorFlow variable (inside a
    ``tf.distribute`` update: the handle of the local copy)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="facegan_tf")
class TF1Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` updating each variable with ``ResourceApplyAdam`` (TF1's
    ``AdamOptimizer`` kernel); arguments as `keras.optimizers.Adam`."""

    def _fused(self) -> bool:
        return not self.amsgrad and self.weight_decay is None

    def _coefficients(self, learning_rate, dtype) -> tuple:
        """``(lr, beta1^t, beta2^t, beta1, beta2, epsilon)`` as ``dtype`` tensors."""
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        return (
            tf.cast(learning_rate, dtype),
            tf.pow(beta_1, step),
            tf.pow(beta_2, step),
            beta_1,
            beta_2,
            tf.cast(self.epsilon, dtype),
        )

    def _apply_adam(self, variable, gradient, coefficients):
        index = self._get_variable_index(variable)
        lr, beta_1_power, beta_2_power, beta_1, beta_2, epsilon = coefficients
        return tf.raw_ops.ResourceApplyAdam(
            var=_resource(variable),
            m=_resource(self._momentums[index]),
            v=_resource(self._velocities[index]),
            beta1_power=beta_1_power,
            beta2_power=beta_2_power,
            lr=lr,
            beta1=beta_1,
            beta2=beta_2,
            epsilon=epsilon,
            grad=tf.cast(gradient, variable.dtype),
            use_locking=False,
            use_nesterov=False,
        )

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused() or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        return self._apply_adam(
            variable, gradient, self._coefficients(learning_rate, variable.dtype)
        )

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        """One ``ResourceApplyAdam`` per variable (per replica copy), with the scalar
        coefficients built once per dtype rather than once per variable."""
        if not self._fused():
            return super()._distributed_tf_update_step(
                distribution, grads_and_vars, learning_rate
            )
        coefficients: dict = {}

        def apply(variable, gradient, coefficients_of_dtype):
            if isinstance(gradient, tf.IndexedSlices):
                return super(TF1Adam, self).update_step(gradient, variable, learning_rate)
            return self._apply_adam(variable, gradient, coefficients_of_dtype)

        for gradient, variable in grads_and_vars:
            dtype = variable.dtype
            if dtype not in coefficients:
                coefficients[dtype] = self._coefficients(learning_rate, dtype)
            distribution.extended.update(
                variable, apply, args=(gradient, coefficients[dtype]), group=False
            )


def adam_slots(optimizer: keras.optimizers.Optimizer, variable_path: str) -> tuple:
    """Adam's (first, second) moment variables of the variable ``variable_path`` in
    ``optimizer`` (or the optimizer a loss-scale optimizer wraps). Keras names them
    ``<path with "/" as "_">_momentum`` and ``..._velocity``."""
    slots = {v.name: v for v in getattr(optimizer, "inner_optimizer", optimizer).variables}
    stem = variable_path.replace("/", "_")
    return slots[f"{stem}_momentum"], slots[f"{stem}_velocity"]


def adam_moments(optimizers: dict, trainable: dict, which: str, variable_path: str) -> dict:
    """``{"m": first moment, "v": second moment}`` (numpy) of one trainable variable: the
    public ``optimizer_moments(which, variable_path)`` of every trainer.

    Args:
        optimizers: the trainer's optimisers by name (e.g. ``"generator"``).
        trainable: the trainable variables each optimiser updates, by the same names.
        which: the optimiser's name.
        variable_path: the variable's Keras ``path``, e.g. ``"generator/conv1/kernel"``.

    Raises:
        ValueError: no optimiser ``which``, or it updates no variable ``variable_path``.
    """
    if which not in optimizers:
        raise ValueError(f"`which` must be one of {sorted(optimizers)}. Received: which={which!r}")
    paths = [variable.path for variable in trainable[which]]
    if variable_path not in paths:
        raise ValueError(
            f"No trainable variable of the {which} optimiser has the path {variable_path!r}. "
            f"Paths look like {paths[0]!r}."
        )
    first, second = adam_slots(optimizers[which], variable_path)
    return {"m": np.asarray(first.numpy()), "v": np.asarray(second.numpy())}
