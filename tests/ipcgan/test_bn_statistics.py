"""Batch-norm moving statistics after one IPCGAN training iteration, against an independent
reference: the batch moments of every batch-norm input, computed in numpy from a separate
forward pass (tf.nn convolutions on the models' weights read before and after the step),
averaged with TF1's zero-debiased EMA in the original's update order.

The original groups all 52 moving-average updates into both its D and its G training op, so
one iteration moves G's averages twice (G(s, t) in each update) and D's six times: in the D
update (weights before it) D(x, t), D(x, f), D(G(s, t), t); in the G update (D updated, G not
yet) the same three calls again.
"""

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training.ipcgan import IPCGANConfig, IPCGANTrainer

EPSILON = 1e-3
DECAY = 0.9
G_BN = ["bn1", "bn2", "bn3", "unit_0_sub1_bn1", "unit_0_sub2_bn2", "bn4", "bn5"]
D_BN = ["dis_bn0", "dis_bn1", "dis_bn2"]
# float32 noise of the statistics (our float32 moments vs float64 numpy moments of float32
# activations, relative); the effects guarded are >= 1e-3 relative (see test_order_matters).
RTOL, ATOL = 2e-5, 1e-6


def _weights(model):
    return {v.path.split("/", 1)[1]: v.numpy().copy() for v in model.weights}


def _conv(x, weights, name, stride):
    y = tf.nn.conv2d(x, weights[f"{name}/kernel"], stride, "SAME") + weights[f"{name}/bias"]
    return y.numpy()


def _deconv(x, weights, name):
    kernel = weights[f"{name}/kernel"]
    b, h, w, _ = x.shape
    shape = [b, 2 * h, 2 * w, kernel.shape[2]]
    return (tf.nn.conv2d_transpose(x, kernel, shape, 2, "SAME") + weights[f"{name}/bias"]).numpy()


def _batch_norm(x, weights, name, moments):
    """Batch statistics (biased variance) in float64; records (mean, variance)."""
    x64 = x.astype(np.float64)
    mean, variance = x64.mean(axis=(0, 1, 2)), x64.var(axis=(0, 1, 2))
    moments.setdefault(name, []).append((mean, variance))
    y = (x64 - mean) / np.sqrt(variance + EPSILON) * weights[f"{name}/gamma"] + weights[
        f"{name}/beta"]
    return y.astype(np.float32)


def _generator(source, condition, weights, moments):
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    x = np.concatenate([source, condition], -1)
    x = relu(_batch_norm(_conv(x, weights, "conv1", 1), weights, "bn1", moments))
    x = relu(_batch_norm(_conv(x, weights, "conv2", 2), weights, "bn2", moments))
    x = relu(_batch_norm(_conv(x, weights, "conv3", 2), weights, "bn3", moments))
    y = relu(_batch_norm(_conv(x, weights, "unit_0_sub1_conv1", 1), weights,
                         "unit_0_sub1_bn1", moments))
    x = x + _batch_norm(_conv(y, weights, "unit_0_sub2_conv2", 1), weights,
                        "unit_0_sub2_bn2", moments)
    x = relu(_batch_norm(_deconv(x, weights, "deconv1"), weights, "bn4", moments))
    x = relu(_batch_norm(_deconv(x, weights, "deconv2"), weights, "bn5", moments))
    return np.tanh(_conv(x, weights, "conv4", 1))


def _discriminator(images, condition, weights, moments):
    lrelu = lambda t: np.maximum(t, 0.2 * t)  # noqa: E731
    x = lrelu(_conv(images, weights, "dis", 2))
    x = np.concatenate([x, condition], -1)
    x = lrelu(_batch_norm(_conv(x, weights, "dis_1", 2), weights, "dis_bn0", moments))
    x = lrelu(_batch_norm(_conv(x, weights, "dis_2", 2), weights, "dis_bn1", moments))
    x = lrelu(_batch_norm(_conv(x, weights, "dis_3", 1), weights, "dis_bn2", moments))
    return _conv(x, weights, "dis_4", 1)


def _maps(groups, count, side):
    return np.tile(np.eye(count, dtype=np.float32)[groups][:, None, None, :], (1, side, side, 1))


def _ema(values, initial, zero_debias):
    """TF1 ``assign_moving_average`` applied to ``values`` in order -> (moving, biased, steps)."""
    moving, biased, steps = np.full_like(values[0], initial), np.zeros_like(values[0]), 0
    for value in values:
        if zero_debias:
            biased = biased - (biased - value) * (1 - DECAY)
            steps += 1
            moving = biased / (1 - DECAY ** steps)
        else:
            moving = moving - (moving - value) * (1 - DECAY)
    return moving, biased, steps


def _batch(tiny):
    rng = np.random.default_rng(11)
    size, batch = tiny["image_size"], tiny["batch_size"]
    return {
        "source": rng.normal(0, 60, (batch, size, size, 3)).astype(np.float32),
        "source_alexnet": rng.normal(0, 60, (batch, 67, 67, 3)).astype(np.float32),
        "real": rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32),
        "true_group": np.array([2, 2, 2, 2], np.int32),
        "false_group": np.array([0, 0, 0, 0], np.int32),
    }


def _reference_sequences(tiny, batch, g_before, d_before, d_after, mirror):
    """Per batch-norm layer, the (mean, variance) of each update in the original's order."""
    groups, size = tiny["age_groups"], tiny["image_size"]
    cond_g = _maps(batch["true_group"], groups, size)
    cond_true = _maps(batch["true_group"], groups, size // 2)
    cond_false = _maps(batch["false_group"], groups, size // 2)
    g_moments, d_moments = {}, {}
    fake = _generator(batch["source"], cond_g, g_before, g_moments)  # D update's G(s, t)
    _generator(batch["source"], cond_g, g_before, g_moments)  # G update's G(s, t)
    _discriminator(batch["real"], cond_true, d_before, d_moments)
    _discriminator(batch["real"], cond_false, d_before, d_moments)
    _discriminator(fake, cond_true, d_before, d_moments)
    if mirror:
        _discriminator(batch["real"], cond_true, d_after, d_moments)
        _discriminator(batch["real"], cond_false, d_after, d_moments)
    _discriminator(fake, cond_true, d_after, d_moments)
    logits = [_discriminator(images, cond, d_before, {})
              for images, cond in ((batch["real"], cond_true), (batch["real"], cond_false),
                                   (fake, cond_true))]
    d_parts = {
        "d_loss_real": float(np.mean((logits[0].astype(np.float64) - 1) ** 2)),
        "d_loss_fake1": float(np.mean(logits[1].astype(np.float64) ** 2)),
        "d_loss_fake2": float(np.mean(logits[2].astype(np.float64) ** 2)),
    }
    return g_moments, d_moments, d_parts


@pytest.fixture(scope="module", params=[(True, True), (False, False)],
                ids=["original", "clean"])
def one_iteration(request, tiny, tiny_data, tmp_path_factory):
    zero_debias, mirror = request.param
    folder = tmp_path_factory.mktemp("bn")
    config = IPCGANConfig(**{
        **tiny, "list_dir": str(tiny_data / "lists"), "image_root": str(tiny_data / "images"),
        "checkpoint_dir": str(folder / "ckpt"), "sample_dir": str(folder / "sample"),
        "bn_zero_debias": zero_debias, "mirror_d_statistics": mirror, "seed": 4,
    })
    trainer = IPCGANTrainer(config)
    generator, discriminator = trainer.models["generator"], trainer.models["discriminator"]
    g_before, d_before = _weights(generator), _weights(discriminator)
    batch = _batch(tiny)
    values = trainer.train_step(batch)
    d_after = _weights(discriminator)
    g_moments, d_moments, d_parts = _reference_sequences(
        tiny, batch, g_before, d_before, d_after, mirror
    )
    return {
        "d_parts": d_parts,
        "zero_debias": zero_debias, "mirror": mirror, "trainer": trainer, "values": values,
        "g_moments": g_moments, "d_moments": d_moments, "d_before": d_before, "batch": batch,
    }


def _check_layer(layer, sequence, zero_debias):
    worst = 0.0
    for index, (stat, initial) in enumerate((("moving_mean", 0.0), ("moving_variance", 1.0))):
        values = [pair[index] for pair in sequence]
        moving, biased, steps = _ema(values, initial, zero_debias)
        ours = getattr(layer, stat).numpy()
        np.testing.assert_allclose(ours, moving, rtol=RTOL, atol=ATOL, err_msg=layer.name)
        worst = max(worst, float(np.max(np.abs(ours - moving) / (np.abs(moving) + 1e-3))))
        if zero_debias:
            np.testing.assert_allclose(getattr(layer, f"{stat}_biased").numpy(), biased,
                                       rtol=RTOL, atol=ATOL, err_msg=layer.name)
            assert float(getattr(layer, f"{stat}_local_step").numpy()) == steps
    return worst


def test_moving_statistics_equal_numpy_averages_in_the_original_order(one_iteration):
    run = one_iteration
    trainer = run["trainer"]
    d_count = 6 if run["mirror"] else 4
    worst = 0.0
    for name in G_BN:
        assert len(run["g_moments"][name]) == 2
        worst = max(worst, _check_layer(trainer.models["generator"].get_layer(name),
                                        run["g_moments"][name], run["zero_debias"]))
    for name in D_BN:
        assert len(run["d_moments"][name]) == d_count
        worst = max(worst, _check_layer(trainer.models["discriminator"].get_layer(name),
                                        run["d_moments"][name], run["zero_debias"]))
    print(f"max relative difference of the moving statistics: {worst:.2e}")


def test_order_matters_more_than_the_tolerance(one_iteration):
    """Another order of the D update's three calls, or dropping the G update's real-image
    calls, moves D's averages by far more than the tolerance: the test can tell them apart."""
    run = one_iteration
    if not run["mirror"]:
        pytest.skip("not applicable: the six-update order needs mirror_d_statistics=True")
    sequence = run["d_moments"]["dis_bn0"]
    reordered = [sequence[2], sequence[0], sequence[1]] + sequence[3:]
    fewer = sequence[:3] + sequence[5:]
    reference = _ema([pair[1] for pair in sequence], 1.0, True)[0]
    for other in (reordered, fewer):
        changed = _ema([pair[1] for pair in other], 1.0, True)[0]
        effect = np.abs(changed - reference) / (np.abs(reference) + 1e-3)
        print(f"relative effect on dis_bn0's moving variance: {effect.max():.2e}")
        excess = np.abs(changed - reference) - (ATOL + RTOL * np.abs(reference))
        assert excess.max() > 0


def test_losses_under_the_original_names(one_iteration):
    """d_loss = 75 * 1/2 * (real + 1/2 * (fake1 + fake2)) from the returned parts; the
    parts against the reference forward of the D update."""
    run = one_iteration
    values = {k: float(v) for k, v in run["values"].items()}
    assert set(values) == {"d_loss", "d_loss_real", "d_loss_fake1", "d_loss_fake2", "g_loss",
                           "fea_loss", "age_loss", "g_total_loss"}
    assert values["d_loss"] == pytest.approx(
        75 * 0.5 * (values["d_loss_real"] + 0.5 * (values["d_loss_fake1"]
                                                   + values["d_loss_fake2"])), rel=1e-5)
    for name, reference in run["d_parts"].items():
        assert values[name] == pytest.approx(reference, rel=1e-5), name
    assert values["g_total_loss"] == pytest.approx(
        values["g_loss"] + values["fea_loss"] + values["age_loss"], rel=1e-5)
    trainer = run["trainer"]
    assert trainer.learning_rate == pytest.approx(1e-3)
    moments = trainer.optimizer_moments("discriminator", "discriminator/dis_4/kernel")
    assert moments["m"].shape == moments["v"].shape == (4, 4, 32, 8)
    assert np.abs(moments["m"]).max() > 0 and moments["v"].min() >= 0
    with pytest.raises(ValueError, match="which='g'"):
        trainer.optimizer_moments("g", "generator/conv1/kernel")
    with pytest.raises(ValueError, match="no_such"):
        trainer.optimizer_moments("generator", "generator/no_such/kernel")
