"""Every GAN variant learns on tiny synthetic data; a resumed run continues exactly."""

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.data.faces import FaceSet
from facegan_tf.training.cgan import ConditionalGANConfig, ConditionalGANTrainer
from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer, interpolate_latents

SIZE = 16


def two_class_faces(count=1600, seed=0):
    """Class 0 ("dark") pixels around 50, class 1 ("bright") around 205, noise std 20."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], count // 2).astype(np.int32)
    base = np.where(labels[:, None, None, None] == 0, 50.0, 205.0)
    images = np.clip(base + rng.normal(0, 20, (count, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return FaceSet(images, labels, ("dark", "bright"), "synthetic")


def tiny_cgan_config(model, save_dir, **overrides):
    values = dict(
        model=model,
        save_dir=str(save_dir),
        image_size=SIZE,
        batch_size=16,
        num_epochs=2,
        z_dim=8,
        fc_channels=16,
        g_channels=8,
        d_channels=8,
        mlp_g_units=(128, 256),
        mlp_d_units=(128, 128),
        sample_H=2,
        sample_W=4,
        eval_sample_size=16,
        batch_size_eval=16,
        log_every_steps=10,
        init_learning_rate=2e-3,
        n_critic=2,
        class_names=("dark", "bright"),
    )
    values.update(overrides)
    return ConditionalGANConfig(**values)


def brightness_gap(trainer, count=64):
    """mean G(z, bright) - mean G(z, dark) on the same z (inference mode)."""
    z = np.random.default_rng(1).normal(size=(count, trainer.config.z_dim)).astype(np.float32)
    bright = trainer.generate(z, np.ones(count, np.int32))
    dark = trainer.generate(z, np.zeros(count, np.int32))
    return float(bright.mean() - dark.mean())


@pytest.fixture(scope="module")
def faces():
    return two_class_faces()


@pytest.mark.parametrize("model", ["cdcgan", "cwgan_gp", "acgan"])
def test_conditional_generator_learns_the_class_brightness(model, faces, tmp_path):
    trainer = ConditionalGANTrainer(tiny_cgan_config(model, tmp_path))
    before = brightness_gap(trainer)
    summary = trainer.fit(faces, progress=False)
    after = brightness_gap(trainer)
    # The real gap is (205 - 50) / 127.5 = 1.22; an untrained generator gives ~0.
    assert abs(before) < 0.1
    assert after > 0.5, (model, before, after, summary["losses"])
    if model == "acgan":
        assert summary["losses"]["d_class_accuracy"] > 0.9
    if model == "cwgan_gp":
        assert summary["losses"]["wasserstein_estimate"] > 0


def test_mlp_cgan_discriminator_separates_real_and_fake(faces, tmp_path):
    trainer = ConditionalGANTrainer(tiny_cgan_config("cgan", tmp_path, log_every_steps=1))
    trainer.fit(faces, progress=False)
    steps = trainer.history["steps"]
    first = np.mean([r["d_real_score"] - r["d_fake_score"] for r in steps[:3]])
    last = np.mean([r["d_real_score"] - r["d_fake_score"] for r in steps[-20:]])
    # LSGAN targets 1 (real) and 0 (fake): the separation grows from ~0 towards 1, and the
    # generator output moves towards the data range (real images are mostly saturated).
    assert first < 0.3 and last > 0.5, (first, last)


def test_dcgan_resume_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (48, SIZE, SIZE, 3), dtype=np.uint8)
    data = FaceSet(images, np.zeros(48, np.int32), ("faces",), "random")

    def config(save_dir, max_steps):
        return DCGANConfig(
            save_dir=str(save_dir),
            image_size=SIZE,
            batch_size=8,
            num_epochs=2,
            z_dim=8,
            fc_channels=8,
            g_channels=4,
            d_channels=4,
            sample_H=1,
            sample_W=2,
            eval_sample_size=4,
            batch_size_eval=4,
            max_steps=max_steps,
            beta1=0.5,
        )

    straight = DCGANTrainer(config(tmp_path / "a", 8))
    straight.fit(data, progress=False)

    first = DCGANTrainer(config(tmp_path / "b", 4))
    first.fit(data, progress=False)
    saved_opt = [v.numpy() for v in first.optimizers["generator"].variables]
    resumed = DCGANTrainer(config(tmp_path / "b", 8))
    resumed.restore()
    assert int(resumed.step.numpy()) == 4
    for a, b in zip(saved_opt, [v.numpy() for v in resumed.optimizers["generator"].variables]):
        np.testing.assert_array_equal(a, b)
    resumed.fit(data, progress=False)
    assert int(resumed.step.numpy()) == int(straight.step.numpy()) == 8
    assert int(resumed.epoch.numpy()) == int(straight.epoch.numpy()) == 1
    for name in ("generator", "discriminator"):
        for a, b in zip(straight.models[name].weights, resumed.models[name].weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
        for a, b in zip(straight.optimizers[name].variables, resumed.optimizers[name].variables):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_dcgan_step_matches_an_independent_computation(tmp_path):
    """One D then two G Adam steps recomputed by hand from the same z and batch."""
    images = np.random.default_rng(5).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    data = FaceSet(images, np.zeros(8, np.int32), ("faces",), "random")
    cfg = DCGANConfig(
        save_dir=str(tmp_path),
        image_size=SIZE,
        batch_size=8,
        num_epochs=1,
        z_dim=8,
        fc_channels=8,
        g_channels=4,
        d_channels=4,
        sample_H=1,
        sample_W=2,
        eval_sample_size=4,
        batch_size_eval=4,
        max_steps=1,
    )
    trainer = DCGANTrainer(cfg)
    generator, discriminator = trainer.models["generator"], trainer.models["discriminator"]
    g0 = [v.numpy() for v in generator.trainable_variables]
    d0 = [v.numpy() for v in discriminator.trainable_variables]
    trainer.fit(data, progress=False)

    from facegan_tf.data.faces import epoch_permutation
    from facegan_tf.training.gan_loop import SEED_Z, step_seed

    real = images[epoch_permutation(8, 0, 0)].astype(np.float32) / 127.5 - 1.0
    seed = step_seed(0, SEED_Z, 1, 0)
    z = tf.random.stateless_uniform((8, 8), seed, minval=-1.0, maxval=1.0)
    g_ref, d_ref = DCGANTrainer.build(trainer)[0].values()
    for v, value in zip(g_ref.trainable_variables, g0):
        v.assign(value)
    for v, value in zip(d_ref.trainable_variables, d0):
        v.assign(value)

    def sce(logits, target):
        return tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.fill(tf.shape(logits), target), logits=logits
            )
        )

    def adam_update(variables, grads, state, t, lr=2e-4, b1=0.9, b2=0.999, eps=1e-8):
        for i, (v, g) in enumerate(zip(variables, grads)):
            m, s = state.setdefault(i, (0.0, 0.0))
            m = b1 * m + (1 - b1) * g.numpy()
            s = b2 * s + (1 - b2) * np.square(g.numpy())
            state[i] = (m, s)
            alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            v.assign(v.numpy() - alpha * m / (np.sqrt(s) + eps))

    with tf.GradientTape() as tape:
        fake = g_ref(z, training=True)
        d_loss = sce(d_ref(real, training=True), 1.0) + sce(d_ref(fake, training=True), 0.0)
    adam_update(d_ref.trainable_variables, tape.gradient(d_loss, d_ref.trainable_variables), {}, 1)
    g_state = {}
    for t in (1, 2):
        with tf.GradientTape() as tape:
            g_loss = sce(d_ref(g_ref(z, training=True), training=True), 1.0)
        adam_update(
            g_ref.trainable_variables, tape.gradient(g_loss, g_ref.trainable_variables), g_state, t
        )
    # Biases followed by a batch norm have an exactly-zero gradient in theory, so Adam moves
    # them by the sign of float rounding noise; they are left out of the comparison.
    bn_fed = ("g_dense/bias", "g_deconv_0/bias", "d_conv_1/bias")
    compared = 0
    for model, ref_model in ((generator, g_ref), (discriminator, d_ref)):
        for ours, ref in zip(model.trainable_variables, ref_model.trainable_variables):
            if ours.path.endswith(bn_fed):
                continue
            np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=2e-6, err_msg=ours.path)
            compared += 1
    assert compared == 15


def test_interpolation_matches_sualab_formula():
    z_a, z_b = np.zeros(3, np.float32), np.full(3, 10.0, np.float32)
    path = interpolate_latents(z_a, z_b, 9)
    assert path.shape == (11, 3)
    np.testing.assert_allclose(path[:, 0], np.arange(11, dtype=np.float32))
