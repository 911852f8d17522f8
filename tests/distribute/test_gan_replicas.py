"""DCGAN and the conditional GANs under MirroredStrategy on the 2 logical CPUs of
tests/conftest.py, with mixed precision and XLA.

With synchronised batch norm, one step on 2 replicas with per-replica batch B must give the
weights of one step on one device with batch 2B: losses are averaged over the global batch,
gradients summed over replicas, and each replica takes its rows of the global batch's noise.
The runs use Adam with a large epsilon (1.0), whose first update lr * g / (|g| + eps) is
close to linear in the gradient g, so a wrong gradient scale shows in the weights (with
epsilon 1e-8 the first Adam step is lr * sign(g) and would hide it).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training.cgan import ConditionalGANConfig, ConditionalGANTrainer
from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer
from facegan_tf.training.gan_loop import SEED_ALPHA, SEED_LABELS, SEED_Z, step_seed

pytestmark = pytest.mark.skipif(
    len(tf.config.list_logical_devices("CPU")) < 2,
    reason="needs 2 logical CPUs (tests/conftest.py splits the CPU)",
)

SIZE = 16
COMMON = dict(
    image_size=SIZE,
    crop_size=0,
    num_epochs=1,
    z_dim=8,
    fc_channels=8,
    g_channels=4,
    d_channels=4,
    sample_H=1,
    sample_W=2,
    eval_sample_size=4,
    batch_size_eval=4,
    seed=5,
)
#: Adam close to linear in the gradient on its first step (see the module docstring).
LINEAR_ADAM = dict(init_learning_rate=0.5, eps=1.0)


def _mirrored_strategy():
    """One MirroredStrategy over the 2 logical CPUs for every 2-replica trainer here.

    Each MirroredStrategy numbers its collective ops from the same group key, so two of them
    in one process can collide; this module's strategy gets its own key range (TensorFlow's
    test-only ``_collective_key_base``) and is shared by its trainers.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    previous = tf.distribute.MirroredStrategy._collective_key_base
    tf.distribute.MirroredStrategy._collective_key_base = 5000
    try:
        return tf.distribute.MirroredStrategy(devices)
    finally:
        tf.distribute.MirroredStrategy._collective_key_base = previous


MIRRORED = _mirrored_strategy() if len(tf.config.list_logical_devices("CPU")) >= 2 else None


def make_trainer(trainer_class, config):
    """The trainer of ``config``, on the shared strategy when it asks for "mirrored"."""
    return trainer_class(config, MIRRORED if config.strategy == "mirrored" else None)


def cwgan_config(folder, **changes):
    values = dict(
        COMMON,
        model="cwgan_gp",
        save_dir=str(folder),
        n_critic=1,
        class_names=("a", "b"),
        **LINEAR_ADAM,
    )
    values.update(changes)
    return ConditionalGANConfig(**values)


def dcgan_config(folder, **changes):
    values = dict(COMMON, save_dir=str(folder), z_distribution="uniform", **LINEAR_ADAM)
    values.update(changes)
    return DCGANConfig(**values)


def global_batch(size=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.uniform(-1, 1, (size, SIZE, SIZE, 3)).astype(np.float32),
        "label": rng.integers(0, 2, size).astype(np.int32),
    }


def one_step(trainer, batch):
    """Runs one training step on ``batch`` (split across the trainer's replicas)."""
    dataset = tf.data.Dataset.from_tensors(batch)
    (distributed,) = list(trainer.strategy.experimental_distribute_dataset(dataset))
    return {k: float(v) for k, v in trainer.train_step(distributed).items()}


def model_weights(trainer):
    return {f"{name}/{v.path}": v.numpy() for name, m in trainer.models.items() for v in m.weights}


def step_both(make_config, root, name):
    """A 1-device trainer (batch 4) and a 2-replica one (batch 2 per replica) after one step
    on the same global batch, with synchronised batch norm."""
    single = make_config(root / f"{name}_one", batch_size=4, sync_batch_norm=True)
    double = make_config(
        root / f"{name}_two", batch_size=2, strategy="mirrored", sync_batch_norm=True
    )
    trainer_class = DCGANTrainer if name == "dcgan" else ConditionalGANTrainer
    single, double = make_trainer(trainer_class, single), make_trainer(trainer_class, double)
    initial = (model_weights(single), model_weights(double))
    batch = global_batch(4)
    losses = (one_step(single, batch), one_step(double, batch))
    return {"single": single, "double": double, "initial": initial, "losses": losses}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("gan_replicas")


@pytest.fixture(scope="module")
def cwgan(root):
    return step_both(cwgan_config, root, "cwgan")


@pytest.fixture(scope="module")
def dcgan(root):
    return step_both(dcgan_config, root, "dcgan")


def assert_same_step(run):
    single, double = run["single"], run["double"]
    assert (single.replicas, double.replicas) == (1, 2)
    assert single.global_batch == double.global_batch == 4
    one, two = run["initial"]
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
    one_losses, two_losses = run["losses"]
    assert one_losses.keys() == two_losses.keys()
    for name in one_losses:
        assert two_losses[name] == pytest.approx(one_losses[name], rel=1e-5, abs=1e-6), name
    after_one, after_two = model_weights(single), model_weights(double)
    initial = run["initial"][0]
    for model in ("generator", "discriminator"):
        moved = max(
            np.abs(after_one[n] - initial[n]).max() for n in after_one if n.startswith(model)
        )
        assert moved > 1e-4, model  # the step changed the model noticeably
    for name in after_one:
        np.testing.assert_allclose(
            after_two[name], after_one[name], rtol=1e-5, atol=2e-7, err_msg=name
        )
    for name in ("generator", "discriminator"):
        slots = [np.asarray(v) for v in single.optimizers[name].variables]
        # Slots of biases that feed a batch norm hold float noise (their gradient is 0 in
        # theory); compare at a scale set by the optimizer's largest slot entry.
        atol = 1e-4 * max(float(np.abs(a).max()) for a in slots if a.ndim)
        for a, b in zip(slots, double.optimizers[name].variables):
            np.testing.assert_allclose(np.asarray(b), a, rtol=1e-4, atol=atol, err_msg=name)


def test_cwgan_gp_step_on_two_replicas_equals_one_device(cwgan):
    assert_same_step(cwgan)
    assert int(cwgan["double"].step.numpy()) == 1


def test_dcgan_step_on_two_replicas_equals_one_device(dcgan):
    assert_same_step(dcgan)


def test_each_replica_draws_its_rows_of_the_global_noise(cwgan):
    """Replica r's z, fake labels and alpha are rows [2r, 2r + 2) of the global draws."""
    double = cwgan["double"]
    config = double.config
    step = tf.constant(7, tf.int64)

    def draws():
        z = double.replica_z(step)
        _, _, _, labels = double._noise({"image": tf.zeros((2, 1)), "label": tf.zeros(2)}, step)
        alpha_seed = step_seed(config.seed, SEED_ALPHA, step)
        alpha = double.replica_rows(lambda n: tf.random.stateless_uniform((n,), alpha_seed))
        return z, labels, alpha

    per_replica = tf.function(lambda: double.strategy.run(draws))()
    z, labels, alpha = (
        np.concatenate([np.asarray(t) for t in double.strategy.experimental_local_results(v)])
        for v in per_replica
    )
    expected_z = tf.random.stateless_normal((4, 8), step_seed(config.seed, SEED_Z, 7))
    expected_labels = tf.random.stateless_uniform(
        (4,), step_seed(config.seed, SEED_LABELS, 7), minval=0, maxval=2, dtype=tf.int32
    )
    expected_alpha = tf.random.stateless_uniform((4,), step_seed(config.seed, SEED_ALPHA, 7))
    np.testing.assert_array_equal(z, expected_z.numpy())
    np.testing.assert_array_equal(labels, expected_labels.numpy())
    np.testing.assert_array_equal(alpha, expected_alpha.numpy())
    assert not np.allclose(z[:2], z[2:])


def test_checkpoint_of_two_replicas_restores_on_one(cwgan, root):
    double = cwgan["double"]
    path = double.save()
    assert os.path.basename(path) == "ckpt-1"
    restored = ConditionalGANTrainer(cwgan_config(root / "cwgan_two", batch_size=4))
    assert restored.replicas == 1
    assert restored.restore() == path
    assert int(restored.step.numpy()) == 1
    ours, saved = model_weights(restored), model_weights(double)
    for name in saved:
        np.testing.assert_array_equal(ours[name], saved[name], err_msg=name)
    for name in ("generator", "discriminator"):
        assert int(restored.optimizers[name].iterations.numpy()) == 1
        for a, b in zip(restored.optimizers[name].variables, double.optimizers[name].variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------ mixed precision and XLA
MODELS = ["dcgan", "cgan", "cdcgan", "cwgan_gp", "acgan"]


def fast_trainer(model, folder, **changes):
    if model == "dcgan":
        return make_trainer(DCGANTrainer, dcgan_config(folder, g_steps_per_d=1, **changes))
    extra = dict(mlp_g_units=(16,), mlp_d_units=(16,), mlp_label_units=4)
    config = cwgan_config(folder, model=model, **extra, **changes)
    return make_trainer(ConditionalGANTrainer, config)


def assert_float32_variables_and_finite_images(trainer):
    assert trainer.models["generator"].compute_dtype == "float16"
    dtypes = {v.dtype for m in trainer.models.values() for v in m.trainable_variables}
    assert dtypes == {"float32"}
    images = trainer.generate(np.zeros((2, 8), np.float32), np.array([0, 1], np.int32))
    assert images.dtype == np.float32 and np.isfinite(images).all()
    assert np.abs(images).max() <= 1.0


@pytest.mark.parametrize("model", MODELS)
def test_mixed_precision_on_two_replicas_stays_finite(model, root):
    trainer = fast_trainer(
        model,
        root / f"mixed_{model}",
        batch_size=2,
        strategy="mirrored",
        mixed_precision=True,
        init_learning_rate=2e-4,
        eps=1e-8,
    )
    before = model_weights(trainer)
    for seed in (0, 1):
        losses = one_step(trainer, global_batch(4, seed))
        assert {"g_loss", "d_loss"} <= losses.keys()
        assert all(np.isfinite(v) for v in losses.values()), losses
    after = model_weights(trainer)
    moved = [n for n in after if n.endswith("kernel") and not np.array_equal(after[n], before[n])]
    # A step whose scaled gradients overflow is skipped while the loss scale halves; at least
    # one of the two steps must have updated both models.
    assert any(n.startswith("generator") for n in moved), model
    assert any(n.startswith("discriminator") for n in moved), model
    assert_float32_variables_and_finite_images(trainer)


@pytest.mark.parametrize("model", MODELS)
def test_xla_with_mixed_precision_stays_finite(model, root):
    trainer = fast_trainer(
        model, root / f"xla_{model}", batch_size=2, mixed_precision=True, xla=True, eps=1e-8
    )
    losses = one_step(trainer, global_batch(2))
    assert {"g_loss", "d_loss"} <= losses.keys()
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert_float32_variables_and_finite_images(trainer)


def test_xla_step_equals_the_plain_step(root):
    """cWGAN-GP on one device: the jit-compiled forward/backward gives the plain weights."""
    plain = fast_trainer("cwgan_gp", root / "xla_plain", batch_size=4)
    compiled = fast_trainer("cwgan_gp", root / "xla_on", batch_size=4, xla=True)
    batch = global_batch(4)
    losses = one_step(plain, batch), one_step(compiled, batch)
    for name in losses[0]:
        assert losses[1][name] == pytest.approx(losses[0][name], rel=1e-4, abs=1e-5), name
    one, two = model_weights(plain), model_weights(compiled)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_mixed_precision_checkpoint_resumes_in_float32(root):
    folder = root / "mixed_resume"
    mixed = fast_trainer("cdcgan", folder, batch_size=2, mixed_precision=True)
    one_step(mixed, global_batch(2))
    path = mixed.save()
    plain = fast_trainer("cdcgan", folder, batch_size=2)
    assert plain.restore() == path
    for name, value in model_weights(mixed).items():
        np.testing.assert_array_equal(model_weights(plain)[name], value, err_msg=name)
    inner = mixed.optimizers["generator"].inner_optimizer
    for a, b in zip(plain.optimizers["generator"].variables, inner.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sync_batch_norm_with_xla_on_two_replicas_is_refused(root):
    with pytest.raises(ValueError, match="sync_batch_norm.*xla"):
        fast_trainer(
            "dcgan",
            root / "refused",
            batch_size=2,
            strategy="mirrored",
            sync_batch_norm=True,
            xla=True,
        )
