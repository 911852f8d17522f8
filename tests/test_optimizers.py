"""`TF1Adam`: TF1's ``ResourceApplyAdam`` kernel behind Keras' Adam interface.

The reference is an independent numpy implementation of TF1 ``AdamOptimizer``'s update
(float64, beta powers as TF1 keeps them: multiplied by beta at every step). Float32 noise
of one update is a few ulp of the weight (|w| <= 2 here: 2.4e-7 per ulp) plus lr x 1e-6;
five steps are held to 2e-6 absolute, 1 % of one Adam step (lr = 2e-4).
"""

import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training.optimizers import TF1Adam
from facegan_tf.training.precision import loss_scaled

LR, BETA1, BETA2, EPS = 2e-4, 0.5, 0.999, 1e-8
STEPS = 5
ATOL = 2e-6


def numpy_tf1_adam(w, grads, lr=LR, beta1=BETA1, beta2=BETA2, eps=EPS):
    """TF1 ``AdamOptimizer``: its constants are float32 tensors; the beta powers are float32
    variables that start at beta and are multiplied by beta after every update; epsilon is
    added outside the square root. Arithmetic in float64."""
    lr, beta1, beta2, eps = (float(np.float32(c)) for c in (lr, beta1, beta2, eps))
    w = w.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    beta1_power, beta2_power = beta1, beta2
    for g in grads:
        g = g.astype(np.float64)
        lr_t = lr * np.sqrt(1 - beta2_power) / (1 - beta1_power)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + eps)
        beta1_power = float(np.float32(beta1_power) * np.float32(beta1))
        beta2_power = float(np.float32(beta2_power) * np.float32(beta2))
    return w, m, v


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 3, 4, 5), (5,), (7, 2)]
    inits = [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    # Gradients spanning magnitudes, including tiny ones where epsilon matters.
    grads = [
        [(rng.normal(size=s) * 10.0 ** rng.integers(-9, 1, size=s)).astype(np.float32)
         for s in shapes]
        for _ in range(STEPS)
    ]
    return inits, grads


def _run(optimizer, inits, grads, traced=True):
    variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(inits)]
    optimizer.build(variables)

    def apply(gs):
        optimizer.apply_gradients(zip(gs, variables))

    if traced:
        apply = tf.function(apply)
    for gs in grads:
        apply([tf.constant(g) for g in gs])
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return variables, inner


@pytest.mark.parametrize("traced", [True, False], ids=["traced", "eager"])
def test_weights_and_moments_equal_tf1_formula(traced):
    inits, grads = _problem()
    variables, optimizer = _run(TF1Adam(LR, beta_1=BETA1, epsilon=EPS), inits, grads, traced)
    assert int(optimizer.iterations) == STEPS
    for i, var in enumerate(variables):
        w, m, v = numpy_tf1_adam(inits[i], [gs[i] for gs in grads])
        np.testing.assert_allclose(var.numpy(), w, rtol=0, atol=ATOL)
        # Moments: float32 rounding of a sum of terms up to their largest entry.
        for slot, expected in ((optimizer._momentums[i], m), (optimizer._velocities[i], v)):
            atol = 1e-6 * np.abs(expected).max()
            np.testing.assert_allclose(slot.numpy(), expected, rtol=0, atol=atol)
    # The test can fail: one wrong constant (epsilon under the square root) moves the weights
    # whose gradients are tiny by more than the tolerance.
    w_wrong, _, _ = numpy_tf1_adam(inits[0], [gs[0] for gs in grads], eps=EPS**2)
    assert np.abs(w_wrong - numpy_tf1_adam(inits[0], [gs[0] for gs in grads])[0]).max() > 10 * ATOL


def test_equals_keras_adam():
    inits, grads = _problem(1)
    ours, _ = _run(TF1Adam(LR, beta_1=BETA1, epsilon=EPS), inits, grads)
    keras_, _ = _run(keras.optimizers.Adam(LR, beta_1=BETA1, epsilon=EPS), inits, grads)
    for a, b in zip(ours, keras_):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=ATOL)


def test_one_fused_kernel_per_variable():
    """The traced update holds one ``ResourceApplyAdam`` per variable and no per-variable
    composite (Keras' Adam builds about ten ops per variable and no fused kernel)."""
    inits, grads = _problem()
    variables = [keras.Variable(w) for w in inits]
    optimizer = TF1Adam(LR, beta_1=BETA1, epsilon=EPS)
    optimizer.build(variables)

    @tf.function
    def apply(gs):
        optimizer.apply_gradients(zip(gs, variables))

    graph = apply.get_concrete_function([tf.constant(g) for g in grads[0]]).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("ResourceApplyAdam") == len(variables)
    assert types.count("AssignSubVariableOp") == 0
    assert types.count("Sqrt") == 0


def test_loss_scaled_skips_non_finite_and_unscales():
    inits, grads = _problem(2)
    optimizer = loss_scaled(TF1Adam(LR, beta_1=BETA1, epsilon=EPS), True)
    variables = [keras.Variable(w) for w in inits]
    optimizer.build(variables)
    scale = float(optimizer.dynamic_scale)
    bad = [g.copy() for g in grads[0]]
    bad[1][0] = np.inf
    optimizer.apply_gradients(zip([tf.constant(g) for g in bad], variables))
    for var, w in zip(variables, inits):
        np.testing.assert_array_equal(var.numpy(), w)
    for gs in grads:
        optimizer.apply_gradients(
            zip([tf.constant(g * float(optimizer.dynamic_scale)) for g in gs], variables)
        )
    assert float(optimizer.dynamic_scale) == scale / 2
    for i, var in enumerate(variables):
        w, _, _ = numpy_tf1_adam(inits[i], [gs[i] for gs in grads])
        np.testing.assert_allclose(var.numpy(), w, rtol=0, atol=ATOL)


def test_checkpoint_keys_and_values_interchange_with_keras_adam():
    inits, grads = _problem(3)
    keras_vars, keras_opt = _run(keras.optimizers.Adam(LR, beta_1=BETA1, epsilon=EPS),
                                 inits, grads[:2])
    with tempfile.TemporaryDirectory() as tmp:
        path = tf.train.Checkpoint(optimizer=keras_opt).write(os.path.join(tmp, "k"))
        variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(inits)]
        ours = TF1Adam(LR, beta_1=BETA1, epsilon=EPS)
        ours.build(variables)
        tf.train.Checkpoint(optimizer=ours).read(path).assert_consumed()
        ours_path = tf.train.Checkpoint(optimizer=ours).write(os.path.join(tmp, "o"))
        assert [k for k, _ in tf.train.list_variables(path)] == [
            k for k, _ in tf.train.list_variables(ours_path)
        ]
    assert int(ours.iterations) == 2
    for a, b in zip(ours.variables, keras_opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
