"""IPCGAN networks (shapes, batch-norm modes, serialisation) and the TF1 converter."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.migrate import LegacyCheckpointError, load_legacy, load_legacy_with_info
from facegan_tf.migrate.ipcgan import convert_ipcgan, tf1_scope
from facegan_tf.networks.alexnet import AlexNet, build_age_head, build_alexnet
from facegan_tf.networks.ipcgan import (
    IPCGANDiscriminator,
    IPCGANGenerator,
    build_discriminator,
    build_generator,
)

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def _maps(label, batch, side, groups):
    return tf.tile(tf.one_hot([label] * batch, groups)[:, None, None, :], [1, side, side, 1])


def test_shapes_any_batch_and_full_size_parameter_counts():
    generator = build_generator(4, 2, 5, 16)
    discriminator = build_discriminator(4, 8, 5, 16)
    for batch in (1, 3):
        out = generator([tf.zeros([batch, 16, 16, 3]), _maps(1, batch, 16, 5)], training=True)
        assert out.shape == (batch, 16, 16, 3)
        logits = discriminator([out, _maps(1, batch, 8, 5)], training=True)
        assert logits.shape == (batch, 2, 2, 8)
    full_g = IPCGANGenerator()
    full_g([tf.zeros([1, 8, 8, 3]), tf.zeros([1, 8, 8, 5])])
    full_d = IPCGANDiscriminator()
    full_d([tf.zeros([1, 16, 16, 3]), tf.zeros([1, 8, 8, 5])])
    assert sum(int(np.prod(w.shape)) for w in full_g.trainable_weights) == 1976611
    assert sum(int(np.prod(w.shape)) for w in full_d.trainable_weights) == 6963392


def test_alexnet_taps_and_parameter_counts():
    model = build_alexnet((4, 4, 4, 4, 4), 8, 6, 7, input_size=67)
    taps = model(tf.zeros([2, 67, 67, 3]))
    assert taps["conv5"].shape == (2, 3, 3, 4) and taps["pool5"].shape == (2, 4)
    assert taps["logits"].shape == (2, 7)
    assert model.features(tf.zeros([1, 67, 67, 3]), "fc7").shape == (1, 8)
    with pytest.raises(ValueError, match="fea_layer_name='conv9'"):
        model.features(tf.zeros([1, 67, 67, 3]), "conv9")
    full = AlexNet()
    full(tf.zeros([1, 227, 227, 3]))
    count = sum(int(np.prod(w.shape)) for w in full.weights)
    assert count == 58431056
    head = build_age_head()
    assert sum(int(np.prod(w.shape)) for w in head.weights) == 54554629


def test_batch_norm_modes_and_residual_quirk():
    generator = build_generator(4, 1, 3, 8)
    rng = np.random.default_rng(0)
    images = rng.normal(0, 50, (4, 8, 8, 3)).astype(np.float32)
    cond = _maps(2, 4, 8, 3)
    stats = [v.numpy().copy() for v in generator.non_trainable_weights]
    generator([images, cond], training=True, update_statistics=False)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(stats, generator.non_trainable_weights))
    # Inference mode: residual units still normalise over the batch, so row 0 depends on row 1.
    out_a = generator([images, cond], training=False).numpy()
    changed = images.copy()
    changed[1] = -5.0 * changed[1] + 100.0
    out_b = generator([changed, cond], training=False).numpy()
    assert np.abs(out_a[0] - out_b[0]).max() > 1e-5
    without_units = build_generator(4, 0, 3, 8)
    out_a = without_units([images, cond], training=False).numpy()
    out_b = without_units([changed, cond], training=False).numpy()
    np.testing.assert_allclose(out_a[0], out_b[0], atol=1e-7)
    # Training mode updates the moving averages (TF1 zero-debiased EMA, decay 0.9): after one
    # update they equal the batch moments; the plain EMA gives 0.1 * mean.
    generator([images, cond], training=True)
    bn1 = generator.get_layer("bn1")
    conv = generator.get_layer("conv1")(tf.concat([images, cond], -1)).numpy()
    np.testing.assert_allclose(bn1.moving_mean.numpy(), conv.mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn1.moving_mean_biased.numpy(), 0.1 * conv.mean(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-4)
    assert float(bn1.moving_variance_local_step.numpy()) == 1.0
    plain = build_generator(4, 1, 3, 8, bn_zero_debias=False)
    plain.set_weights(generator.get_weights())
    plain.get_layer("bn1").moving_mean.assign(np.zeros(4, np.float32))
    plain([images, cond], training=True)
    np.testing.assert_allclose(plain.get_layer("bn1").moving_mean.numpy(),
                               0.1 * conv.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)


def test_keras_round_trip(tmp_path):
    generator = build_generator(4, 1, 3, 8)
    path = str(tmp_path / "g.keras")
    generator.save(path)
    loaded = keras.models.load_model(path)
    x = [np.random.default_rng(1).normal(0, 30, (2, 8, 8, 3)).astype(np.float32),
         _maps(0, 2, 8, 3)]
    np.testing.assert_allclose(loaded(x, training=False), generator(x, training=False), atol=1e-6)
    assert loaded.get_config()["num_blocks"] == 1


def test_shape_errors_name_the_value():
    generator = build_generator(4, 1, 3, 8)
    with pytest.raises(ValueError, match="age_groups=3"):
        generator([tf.zeros([1, 8, 8, 3]), tf.zeros([1, 8, 8, 5])])
    with pytest.raises(ValueError, match="multiple of 4"):
        generator([tf.zeros([1, 10, 10, 3]), tf.zeros([1, 10, 10, 3])])
    with pytest.raises(ValueError, match="base_filters"):
        IPCGANGenerator(base_filters=0)


def test_tf1_scope_names():
    assert tf1_scope("unit_3_sub2_bn2") == "unit_3/sub2/bn2"
    assert tf1_scope("deconv1") == "deconv1"


def _write_tf1_alexnet(prefix, with_extras=True):
    """A tiny AlexNet checkpoint in the original's names plus its TF1 forward (independent)."""
    rng = np.random.default_rng(7)
    shapes = {
        "conv1": [11, 11, 3, 4], "conv2": [5, 5, 2, 4], "conv3": [3, 3, 4, 4],
        "conv4": [3, 3, 2, 4], "conv5": [3, 3, 2, 4], "fc6": [4, 8], "fc7": [8, 8],
        "new_1": [8, 6], "new_2": [6, 7],
    }
    if with_extras:
        shapes.update({"age_fc6": [4, 8], "age_fc7": [8, 8], "age_fc8": [8, 3]})
    x = rng.normal(0, 40, (2, 67, 67, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        variables = {}
        for name, shape in shapes.items():
            with v1.variable_scope(f"alexnet/{name}"):
                fan_in = float(np.prod(shape[:-1]))
                w = v1.get_variable("weights", initializer=rng.normal(
                    0, np.sqrt(2 / fan_in), shape).astype(np.float32))
                b = v1.get_variable("biases", initializer=rng.normal(
                    0, 0.1, shape[-1:]).astype(np.float32))
                variables[name] = (w, b)
        if with_extras:
            v1.get_variable("global_step", initializer=np.float32(5))

        def conv(inp, name, stride, padding, groups=1):
            w, b = variables[name]
            parts = zip(tf.split(inp, groups, 3), tf.split(w, groups, 3))
            out = tf.concat([tf.nn.conv2d(i, k, [1, stride, stride, 1], padding)
                             for i, k in parts], 3)
            return tf.nn.relu(out + b)

        def pool(t):
            return tf.nn.max_pool2d(t, 3, 2, "VALID")

        def lrn(t):
            return tf.nn.lrn(t, 2, 1.0, 2e-5, 0.75)

        inp = v1.placeholder(tf.float32, [2, 67, 67, 3])
        h = lrn(pool(conv(inp, "conv1", 4, "VALID")))
        h = lrn(pool(conv(h, "conv2", 1, "SAME", 2)))
        h = conv(h, "conv3", 1, "SAME")
        h = conv(h, "conv4", 1, "SAME", 2)
        conv5 = conv(h, "conv5", 1, "SAME", 2)
        flat = tf.reshape(pool(conv5), [2, -1])

        def fc(t, name, relu=True):
            w, b = variables[name]
            out = tf.matmul(t, w) + b
            return tf.nn.relu(out) if relu else out

        logits = fc(fc(fc(fc(flat, "fc6"), "fc7"), "new_1"), "new_2", relu=False)
        outputs = {"conv5": conv5, "logits": logits}
        if with_extras:
            outputs["age"] = fc(fc(fc(flat, "age_fc6"), "age_fc7"), "age_fc8", relu=False)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            values = session.run(outputs, {inp: x})
            v1.train.Saver().save(session, prefix)
    return x, values


def test_alexnet_and_age_head_from_tf1_checkpoint(tmp_path):
    prefix = str(tmp_path / "alexnet.model-10")
    x, reference = _write_tf1_alexnet(prefix)
    models, info = load_legacy_with_info("ipcgan_alexnet", prefix)
    assert len(info["loaded"]) == 18 and "global_step" in info["ignored"]
    alexnet = models["alexnet"]
    taps = alexnet(x)
    np.testing.assert_allclose(taps["conv5"], reference["conv5"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(taps["logits"], reference["logits"], rtol=1e-4, atol=1e-4)
    head, head_info = load_legacy_with_info("ipcgan_age_classifier", prefix)
    assert len(head_info["loaded"]) == 6 and head_info["age_groups"] == 3
    logits = head["age_head"](alexnet.pool5(x))
    np.testing.assert_allclose(logits, reference["age"], rtol=1e-4, atol=1e-4)
    with pytest.raises(LegacyCheckpointError, match="unexpected checkpoint tensor"):
        load_legacy("ipcgan_alexnet", prefix, strict_extras=True)


def test_wrong_kind_checkpoints_are_refused(tmp_path):
    cyclegan = os.path.join(FIXTURES, "cyclegan_xhujoy_resnet", "checkpoint", "horse2zebra_64")
    with pytest.raises(LegacyCheckpointError, match="generator/conv1/weights"):
        load_legacy("ipcgan", cyclegan)
    prefix = str(tmp_path / "alexnet.model-1")
    _write_tf1_alexnet(prefix, with_extras=False)
    with pytest.raises(LegacyCheckpointError, match="age_fc6"):
        load_legacy("ipcgan_age_classifier", prefix)
    with pytest.raises(ValueError, match="kind="):
        from facegan_tf.migrate.ipcgan import load

        load("cyclegan_xhujoy", prefix)


def test_convert_writes_our_folder(tmp_path):
    prefix = str(tmp_path / "tf1" / "alexnet.model-10")
    os.makedirs(os.path.dirname(prefix))
    x, reference = _write_tf1_alexnet(prefix)
    result = convert_ipcgan("ipcgan_alexnet", prefix, str(tmp_path / "out"))
    assert result["step"] == 10 and os.path.isfile(str(tmp_path / "out" / "alexnet.keras"))
    from facegan_tf.training.ipcgan import load_pretrained

    alexnet = load_pretrained(str(tmp_path / "out"), "alexnet")
    np.testing.assert_allclose(alexnet(x)["conv5"], reference["conv5"], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="age_head"):
        load_pretrained(str(tmp_path / "out"), "age_head")
    with pytest.raises(ValueError, match="already holds"):
        convert_ipcgan("ipcgan_alexnet", prefix, str(tmp_path / "out"))
