import keras
import numpy as np
import pytest

from facegan_tf.layers import InstanceNormalization, ReflectionPadding2D, condition_maps


def reference_instance_norm(x, scale, offset, epsilon):
    mean = x.mean(axis=(1, 2), keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    return scale * (x - mean) / np.sqrt(variance + epsilon) + offset


def test_reflection_padding_matches_numpy_reflect():
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32)
    out = ReflectionPadding2D(3)(x).numpy()
    expected = np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(out, expected)


def test_reflection_padding_rejects_too_small_input():
    with pytest.raises(ValueError, match="larger than the padding"):
        ReflectionPadding2D(3)(np.zeros((1, 3, 8, 1), np.float32))


def test_instance_norm_matches_formula_with_epsilon_1e5():
    rng = np.random.default_rng(1)
    x = rng.normal(1.5, 0.01, size=(3, 8, 8, 4)).astype(np.float32)  # low variance: eps matters
    layer = InstanceNormalization()
    layer.build(x.shape)
    scale = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    offset = rng.normal(0, 0.1, 4).astype(np.float32)
    layer.scale.assign(scale)
    layer.offset.assign(offset)
    out = layer(x).numpy()
    expected = reference_instance_norm(x.astype(np.float64), scale, offset, 1e-5)
    np.testing.assert_allclose(out, expected, atol=2e-4)
    wrong_eps = reference_instance_norm(x.astype(np.float64), scale, offset, 1e-3)
    assert np.abs(out - wrong_eps).max() > 0.1


def test_instance_norm_of_a_1x1_map_returns_offset_exactly():
    """x - mean is exactly 0 on a 1 x 1 map, so the original's
    scale * ((x - mean) * rsqrt(var + eps)) + offset is exactly ``offset`` whatever x,
    scale and offset are (the U-Net bottleneck at 256 px)."""
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 3.0, size=(4, 1, 1, 64)).astype(np.float32)
    layer = InstanceNormalization()
    layer.build(x.shape)
    offset = rng.normal(0.0, 0.3, 64).astype(np.float32)
    layer.scale.assign(rng.normal(1.0, 0.2, 64).astype(np.float32))
    layer.offset.assign(offset)
    out = layer(x).numpy()
    np.testing.assert_array_equal(out, np.broadcast_to(offset, out.shape))


def test_instance_norm_initialisation_like_original():
    layer = InstanceNormalization()
    layer.build((1, 4, 4, 4096))
    scale = layer.scale.numpy()
    assert abs(scale.mean() - 1.0) < 0.005
    assert 0.015 < scale.std() < 0.025
    np.testing.assert_array_equal(layer.offset.numpy(), 0.0)
    assert [w.name for w in layer.weights] == ["scale", "offset"]


def test_layers_round_trip_through_keras_file(tmp_path):
    inputs = keras.Input((8, 8, 2))
    x = ReflectionPadding2D(1)(inputs)
    x = keras.layers.Conv2D(3, 3)(x)
    outputs = InstanceNormalization(epsilon=1e-5)(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(2).normal(size=(2, 8, 8, 2)).astype(np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(data).numpy(), model(data).numpy(), atol=1e-6)


def test_condition_maps_one_hot_planes():
    maps = condition_maps(np.array([0, 2]), 3, 4, 5).numpy()
    assert maps.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(maps[0, :, :, 0], 1.0)
    np.testing.assert_array_equal(maps[1, :, :, 2], 1.0)
    assert maps.sum() == 2 * 4 * 5


def test_forward_grad_conv2d_matches_conv2d_outputs_and_gradients(monkeypatch):
    """The forward-convolution gradients equal TensorFlow's own Conv2D gradients."""
    import tensorflow as tf

    from facegan_tf import layers as facegan_layers
    from facegan_tf.layers import ForwardGradConv2D

    # The forward-convolution route, whether or not this process runs on oneDNN.
    monkeypatch.setattr(facegan_layers, "onednn_enabled", lambda: False)

    x = tf.constant(np.random.default_rng(3).normal(size=(2, 11, 9, 5)), tf.float32)
    for filters in (3, 7):  # fewer and more outputs than inputs: both input-gradient routes
        plain = keras.layers.Conv2D(filters, 3, use_bias=False)
        fast = ForwardGradConv2D(filters, 3, use_bias=False)
        plain.build(x.shape)
        fast.build(x.shape)
        fast.kernel.assign(plain.kernel)
        results = []
        for layer in (plain, fast):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * y)
            d_x, d_kernel = tape.gradient(loss, [x, layer.kernel])
            results.append((y.numpy(), d_x.numpy(), d_kernel.numpy()))
        np.testing.assert_array_equal(results[1][0], results[0][0])
        for fast_grad, plain_grad in zip(results[1][1:], results[0][1:]):
            np.testing.assert_allclose(fast_grad, plain_grad, rtol=1e-5, atol=1e-5)


def _gradient_op_types(layer, x, onednn: bool, monkeypatch) -> set:
    import tensorflow as tf

    from facegan_tf import layers as facegan_layers

    monkeypatch.setattr(facegan_layers, "onednn_enabled", lambda: onednn)

    @tf.function
    def gradients(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs))
        return tape.gradient(loss, [inputs, layer.kernel])

    graph = gradients.get_concrete_function(x).graph
    types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():  # custom gradients live in functions
        types.update(node.op for node in function.definition.node_def)
    return types


def test_forward_grad_conv2d_under_onednn_uses_tensorflows_own_gradients(monkeypatch):
    """With oneDNN on, no forward convolution with an image-sized kernel is built (oneDNN's
    convolution aborts on it at 256 x 256); without, no backprop-filter op is built."""
    import tensorflow as tf

    from facegan_tf.layers import ForwardGradConv2D

    layer = ForwardGradConv2D(4, 7, use_bias=False)
    x = tf.zeros((1, 22, 22, 3))
    layer.build(x.shape)
    on = _gradient_op_types(layer, x, True, monkeypatch)
    off = _gradient_op_types(layer, x, False, monkeypatch)
    assert "Conv2DBackpropFilter" in on
    assert "Conv2DBackpropFilter" not in off


def numpy_moving_update(moving, batch_value, momentum, rule):
    """The originals' moving-average rules, in float32: TF1 ``m - (m - x) * (1 - momentum)``
    (float32 decay), PyTorch ``(1 - p) m + p x`` with p = 1 - momentum."""
    moving = np.float32(moving)
    batch_value = np.float32(batch_value)
    if rule == "tf1_fused":
        decay = np.float32(1) - np.float32(momentum)
        return moving - (moving - batch_value) * decay
    return moving * np.float32(momentum) + batch_value * np.float32(1 - momentum)


@pytest.mark.parametrize("rule", ["tf1_fused", "pytorch"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (8, 6)])
@pytest.mark.parametrize("synchronized", [False, True])
def test_moving_stats_batch_norm_matches_numpy(rule, shape, synchronized):
    """Training output with the biased batch variance; moving variance with the unbiased one,
    var * n / (n - 1), n = values per channel; two updates in a row."""
    from facegan_tf.layers import MovingStatsBatchNormalization

    rng = np.random.default_rng(4)
    layer = MovingStatsBatchNormalization(
        update_rule=rule, momentum=0.9, epsilon=1e-5, synchronized=synchronized
    )
    layer.build(shape)
    gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
    beta = rng.normal(0, 0.1, shape[-1]).astype(np.float32)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    mean_ref = np.zeros(shape[-1], np.float32)
    var_ref = np.ones(shape[-1], np.float32)
    for _ in range(2):
        x = rng.normal(0.5, 2.0, shape).astype(np.float32)
        out = np.asarray(layer(x, training=True))
        axes = tuple(range(len(shape) - 1))
        xd = x.astype(np.float64)
        mean, var = xd.mean(axis=axes), xd.var(axis=axes)
        eps = 1.001e-5 if rule == "tf1_fused" else 1e-5
        np.testing.assert_allclose(out, gamma * (xd - mean) / np.sqrt(var + eps) + beta, atol=2e-5)
        n = x.size // shape[-1]
        mean_ref = numpy_moving_update(mean_ref, mean, 0.9, rule)
        var_ref = numpy_moving_update(var_ref, var * n / (n - 1), 0.9, rule)
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(layer.moving_variance.numpy(), var_ref, rtol=1e-6, atol=1e-7)
    # Keras' BatchNormalization averages the biased variance: a different moving variance.
    assert np.abs(var_ref - numpy_moving_update(1.0, var, 0.9, rule)).max() > 1e-3
    inference = np.asarray(layer(x, training=False))
    expected = gamma * (xd - mean_ref) / np.sqrt(var_ref.astype(np.float64) + eps) + beta
    np.testing.assert_allclose(inference, expected, atol=2e-5)


def test_moving_stats_batch_norm_raises_epsilon_like_tf1_fused():
    """TF1's fused kernel uses max(epsilon, 1.001e-5); PyTorch keeps the given value."""
    from facegan_tf.layers import MovingStatsBatchNormalization

    x = np.random.default_rng(5).normal(0.0, 1e-3, (4, 2, 2, 3)).astype(np.float32)
    outputs = {}
    for rule in ("tf1_fused", "pytorch"):
        layer = MovingStatsBatchNormalization(update_rule=rule, epsilon=1e-8)
        outputs[rule] = np.asarray(layer(x, training=True))
        assert layer.effective_epsilon == (1.001e-5 if rule == "tf1_fused" else 1e-8)
    xd = x.astype(np.float64)
    mean, var = xd.mean(axis=(0, 1, 2)), xd.var(axis=(0, 1, 2))
    for rule, eps in (("tf1_fused", 1.001e-5), ("pytorch", 1e-8)):
        np.testing.assert_allclose(outputs[rule], (xd - mean) / np.sqrt(var + eps), rtol=2e-3)
    assert np.abs(outputs["tf1_fused"] - outputs["pytorch"]).max() > 0.1


def test_moving_stats_batch_norm_weights_config_and_file(tmp_path):
    from facegan_tf.layers import MovingStatsBatchNormalization

    layer = MovingStatsBatchNormalization(update_rule="pytorch", momentum=0.8, epsilon=0.8)
    layer.build((2, 4, 4, 3))
    assert [w.name for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert isinstance(layer, keras.layers.BatchNormalization)
    clone = MovingStatsBatchNormalization.from_config(layer.get_config())
    assert (clone.update_rule, clone.momentum, clone.epsilon) == ("pytorch", 0.8, 0.8)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, MovingStatsBatchNormalization()(inputs))
    model.layers[-1].moving_mean.assign([0.5, -1.0, 2.0])
    path = str(tmp_path / "bn.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.layers[-1], MovingStatsBatchNormalization)
    data = np.random.default_rng(6).normal(size=(2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(reloaded(data)), np.asarray(model(data)))
    with pytest.raises(ValueError, match="update_rule"):
        MovingStatsBatchNormalization(update_rule="keras")
