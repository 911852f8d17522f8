"""Every GAN variant learns on tiny synthetic data; a resumed run continues exactly."""

import dataclasses

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
        num_epochs=1,
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


#: Per-variant settings of the tiny runs. The MLP cGAN uses Adam 5e-4: at 2e-3 its
#: conditioning oscillates (the class brightness flips sign between epochs).
TINY_OVERRIDES = {"cgan": {"init_learning_rate": 5e-4}}


@pytest.mark.parametrize("model", ["cgan", "cdcgan", "cwgan_gp", "acgan"])
def test_conditional_generator_learns_the_class_brightness(model, faces, tmp_path):
    trainer = ConditionalGANTrainer(
        tiny_cgan_config(model, tmp_path, **TINY_OVERRIDES.get(model, {}))
    )
    before = brightness_gap(trainer)
    summary = trainer.fit(faces, progress=False)
    after = brightness_gap(trainer)
    # After 100 steps. The real gap is (205 - 50) / 127.5 = 1.22; an untrained generator
    # gives ~0; the MLP cGAN without its label pathway (mlp_label_units=0) stays near 0.
    # The learned gap depends on the noise stream (cdcgan: 0.40, 1.29, 0.74 for seeds 0-2).
    assert abs(before) < 0.1
    assert after > 0.3, (model, before, after, summary["losses"])
    if model == "acgan":
        assert summary["losses"]["d_class_accuracy"] > 0.9
    if model == "cwgan_gp":
        assert summary["losses"]["wasserstein_estimate"] > 0


def tiny_dcgan_config(save_dir, max_steps):
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
    )


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    """One tiny DCGAN run (48 images, 6 steps per epoch) stopped after step 1 and step 4,
    with the weights before and after step 1."""
    images = np.random.default_rng(3).integers(0, 256, (48, SIZE, SIZE, 3), dtype=np.uint8)
    data = FaceSet(images, np.zeros(48, np.int32), ("faces",), "random")
    trainer = DCGANTrainer(tiny_dcgan_config(tmp_path_factory.mktemp("dcgan_run"), 1))
    snapshot = {}
    for name in ("generator", "discriminator"):
        snapshot[f"{name}_0"] = [v.numpy() for v in trainer.models[name].trainable_variables]
    trainer.fit(data, progress=False)
    for name in ("generator", "discriminator"):
        snapshot[f"{name}_1"] = [v.numpy() for v in trainer.models[name].trainable_variables]
    trainer.config = dataclasses.replace(trainer.config, max_steps=4)
    trainer.fit(data, progress=False)
    return {"trainer": trainer, "data": data, "images": images, **snapshot}


def assert_same_run(reference, resumed):
    """Every weight, optimiser variable, counter and history record bit-identical."""
    for name in ("step", "epoch", "batch_in_epoch"):
        assert int(getattr(resumed, name).numpy()) == int(getattr(reference, name).numpy()), name
    for name in reference.models:
        for a, b in zip(reference.models[name].weights, resumed.models[name].weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
        optimizers = (reference.optimizers[name].variables, resumed.optimizers[name].variables)
        for a, b in zip(*optimizers, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.name)
    for key in ("steps", "epochs"):
        assert len(resumed.history[key]) == len(reference.history[key]), key
        assert resumed.history[key] == reference.history[key], key


def test_dcgan_resume_is_exact(tmp_path):
    """A fresh trainer restored from step 4 and run to step 8 equals one run 0 -> 8 without a
    stop (mid-epoch resume: 6 steps per epoch)."""
    images = np.random.default_rng(3).integers(0, 256, (48, SIZE, SIZE, 3), dtype=np.uint8)
    data = FaceSet(images, np.zeros(48, np.int32), ("faces",), "random")
    config = dataclasses.replace(tiny_dcgan_config(tmp_path / "reference", 8), log_every_steps=1)
    reference = DCGANTrainer(config)
    reference.fit(data, progress=False)
    first = DCGANTrainer(dataclasses.replace(config, save_dir=str(tmp_path / "run"), max_steps=4))
    first.fit(data, progress=False)
    resumed = DCGANTrainer(dataclasses.replace(first.config, max_steps=8))
    resumed.restore()
    assert int(resumed.step.numpy()) == 4
    resumed.fit(data, progress=False)
    assert int(reference.step.numpy()) == 8 and int(reference.epoch.numpy()) == 1
    assert len(reference.history["steps"]) == 8
    assert_same_run(reference, resumed)


@pytest.mark.parametrize("model", ["cdcgan", "cwgan_gp"])
def test_conditional_resume_is_exact(model, tmp_path):
    """cGAN runs: restored at step 3 (cwgan_gp: a critic-only step, n_critic 2) and run to
    step 6, equal to an uninterrupted run 0 -> 6."""
    data = two_class_faces(count=64)
    config = tiny_cgan_config(
        model, tmp_path / "reference", batch_size=8, max_steps=6, log_every_steps=1
    )
    reference = ConditionalGANTrainer(config)
    reference.fit(data, progress=False)
    run_dir = str(tmp_path / "run")
    first = ConditionalGANTrainer(dataclasses.replace(config, save_dir=run_dir, max_steps=3))
    first.fit(data, progress=False)
    resumed = ConditionalGANTrainer(dataclasses.replace(first.config, max_steps=6))
    resumed.restore()
    resumed.fit(data, progress=False)
    assert len(reference.history["steps"]) == 6
    assert_same_run(reference, resumed)


def test_dcgan_step_matches_an_independent_computation(dcgan_run):
    """One D then two G Adam steps recomputed by hand from the same z and batch."""
    trainer, images = dcgan_run["trainer"], dcgan_run["images"]
    g0, d0 = dcgan_run["generator_0"], dcgan_run["discriminator_0"]
    from facegan_tf.data.faces import epoch_permutation
    from facegan_tf.training.gan_loop import SEED_Z, step_seed

    real = images[epoch_permutation(48, 0, 0)[:8]].astype(np.float32) / 127.5 - 1.0
    # One replica: its z is the whole global batch's draw from (seed 0, SEED_Z, step 1).
    seed = step_seed(0, SEED_Z, 1)
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
    g_losses = []
    for t in (1, 2):
        with tf.GradientTape() as tape:
            g_loss = sce(d_ref(g_ref(z, training=True), training=True), 1.0)
        g_losses.append(float(g_loss))
        adam_update(
            g_ref.trainable_variables, tape.gradient(g_loss, g_ref.trainable_variables), g_state, t
        )
    # The losses the trainer reported for step 1 (Adam's first steps are invariant to the
    # gradient's scale, so the weights alone would not show a wrongly scaled loss).
    (record,) = [r for r in trainer.history["steps"] if r["step"] == 1]
    assert record["d_loss"] == pytest.approx(float(d_loss), rel=1e-5)
    assert record["g_loss_1"] == pytest.approx(g_losses[0], rel=1e-5)
    assert record["g_loss_2"] == pytest.approx(g_losses[1], rel=1e-5)
    assert record["g_loss"] == record["g_loss_2"]
    # Biases followed by a batch norm have an exactly-zero gradient in theory, so Adam moves
    # them by the sign of float rounding noise; they are left out of the comparison.
    bn_fed = ("g_dense/bias", "g_deconv_0/bias", "d_conv_1/bias")
    compared = 0
    for name, ref_model in (("generator", g_ref), ("discriminator", d_ref)):
        variables = trainer.models[name].trainable_variables
        for ours, value, ref in zip(
            variables, dcgan_run[f"{name}_1"], ref_model.trainable_variables
        ):
            if ours.path.endswith(bn_fed):
                continue
            np.testing.assert_allclose(value, ref.numpy(), atol=2e-6, err_msg=ours.path)
            compared += 1
    assert compared == 15


def test_interpolation_matches_sualab_formula():
    z_a, z_b = np.zeros(3, np.float32), np.full(3, 10.0, np.float32)
    path = interpolate_latents(z_a, z_b, 9)
    assert path.shape == (11, 3)
    np.testing.assert_allclose(path[:, 0], np.arange(11, dtype=np.float32))


def test_sample_grids_are_also_tensorboard_images(dcgan_run):
    """Every PNG grid written during fit is also an image summary of the same size."""
    import glob
    import os

    from PIL import Image

    save_dir = dcgan_run["trainer"].config.save_dir
    images = {}
    for path in glob.glob(os.path.join(save_dir, "logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "Samples/fixed_z":
                    images[event.step] = tf.image.decode_png(value.tensor.string_val[2]).shape
    pngs = glob.glob(os.path.join(save_dir, "samples", "sample_image_*.png"))
    steps = sorted(int(os.path.basename(p)[13:-4]) for p in pngs)
    assert steps and sorted(images) == steps
    png = np.asarray(Image.open(pngs[0]))
    grid_size = (png.shape[0] // 4, png.shape[1] // 4)  # the PNG is enlarged 4x (16 px)
    assert all(shape[:2] == grid_size for shape in images.values()), (images, png.shape)


@pytest.mark.parametrize("model", ["dcgan", "acgan", "cwgan_gp"])
def test_given_latents_replace_the_draws(model, tmp_path):
    """train_step(batch, z=..., labels=..., alpha=...) with the values the trainer would draw
    equals train_step(batch); other values give another step."""
    from facegan_tf.training.gan_loop import SEED_ALPHA, SEED_LABELS, SEED_Z, step_seed

    def make(folder):
        if model == "dcgan":
            return DCGANTrainer(tiny_dcgan_config(tmp_path / folder, 0))
        return ConditionalGANTrainer(tiny_cgan_config(model, tmp_path / folder, batch_size=8))

    drawn, given, other = make("drawn"), make("given"), make("other")
    rows, z_dim = drawn.global_batch, drawn.config.z_dim
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.uniform(-1, 1, (rows, SIZE, SIZE, 3)).astype(np.float32),
        "label": rng.integers(0, 2, rows).astype(np.int32),
    }
    uniform = drawn.config.z_distribution == "uniform"
    seed = step_seed(0, SEED_Z, 1)
    z = (
        tf.random.stateless_uniform((rows, z_dim), seed, minval=-1.0, maxval=1.0)
        if uniform
        else tf.random.stateless_normal((rows, z_dim), seed)
    ).numpy()
    extra = {}
    if model == "acgan":
        extra["labels"] = tf.random.stateless_uniform(
            (rows,), step_seed(0, SEED_LABELS, 1), minval=0, maxval=2, dtype=tf.int32
        ).numpy()
    if model == "cwgan_gp":
        extra["alpha"] = tf.random.stateless_uniform((rows,), step_seed(0, SEED_ALPHA, 1)).numpy()
    expected = {k: float(v) for k, v in drawn.train_step(batch).items()}
    got = {k: float(v) for k, v in given.train_step(batch, z=z, **extra).items()}
    assert got == expected
    for a, b in zip(drawn.models["generator"].weights, given.models["generator"].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    changed = {k: float(v) for k, v in other.train_step(batch, z=-z, **extra).items()}
    assert changed["d_loss"] != expected["d_loss"]
    with pytest.raises(ValueError, match=r"z of shape \[8, 8\].*Received: z.shape=\[4, 8\]"):
        given.train_step(batch, z=z[:4])
