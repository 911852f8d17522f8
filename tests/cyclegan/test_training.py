"""CycleGAN trainer: schedule, losses against an independent computation, pool, exact resume."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.data.unpaired import scan_unpaired_folders
from facegan_tf.training.checkpointing import write_checkpoint_state
from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer, learning_rate_for_epoch
from facegan_tf.training.image_pool import ImagePool


def test_learning_rate_schedule_of_the_original():
    config = CycleGANConfig()
    assert learning_rate_for_epoch(config, 0) == pytest.approx(2e-4)
    assert learning_rate_for_epoch(config, 99) == pytest.approx(2e-4)
    assert learning_rate_for_epoch(config, 100) == pytest.approx(2e-4)
    assert learning_rate_for_epoch(config, 150) == pytest.approx(1e-4)
    assert learning_rate_for_epoch(config, 199) == pytest.approx(2e-6)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fine_size": 30}, "multiple of 4"),
        ({"use_resnet": False, "fine_size": 128, "load_size": 128}, "multiple of 256"),
        ({"load_size": 200}, "load_size must be >= --fine_size"),
        ({"identity_lambda": 0.5, "output_nc": 1}, "identity loss needs"),
        ({"epoch_step": 300}, "epoch_step"),
    ],
)
def test_config_refuses_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        CycleGANConfig(**changes)


class ReferencePool:
    """The pool rule written out plainly, fed with the same uniform draws."""

    def __init__(self, max_size):
        self.max_size = max_size
        self.entries = []

    def query(self, a, b, draws):
        if self.max_size <= 0:
            return a, b
        if len(self.entries) < self.max_size:
            self.entries.append([a, b])
            return a, b
        if draws[0] > 0.5:
            index_a = int(draws[1] * self.max_size)
            old_a = self.entries[index_a][0]
            self.entries[index_a][0] = a
            index_b = int(draws[2] * self.max_size)
            old_b = self.entries[index_b][1]
            self.entries[index_b][1] = b
            return old_a, old_b
        return a, b


def test_image_pool_follows_the_original_rule():
    pool = ImagePool(3, [1, 2, 2, 1], [1, 2, 2, 1])
    reference = ReferencePool(3)
    query = tf.function(pool.query)
    for step in range(40):
        a = np.full((1, 2, 2, 1), step, np.float32)
        b = np.full((1, 2, 2, 1), 100 + step, np.float32)
        seed = tf.constant([5, step], tf.int64)
        draws = tf.random.stateless_uniform([3], seed=seed).numpy()
        out_a, out_b = query(tf.constant(a), tf.constant(b), seed)
        ref_a, ref_b = reference.query(a, b, draws)
        np.testing.assert_array_equal(out_a.numpy(), ref_a)
        np.testing.assert_array_equal(out_b.numpy(), ref_b)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, random_images):
    root = str(tmp_path_factory.mktemp("unpaired"))
    for sub, count, seed in (("trainA", 5, 0), ("trainB", 4, 1), ("testA", 2, 2), ("testB", 2, 3)):
        random_images(os.path.join(root, sub), count, seed)
    return root


def tiny_config(root, name, **changes):
    values = dict(
        dataset_dir=root,
        epochs=3,
        epoch_step=1,
        load_size=20,
        fine_size=16,
        ngf=4,
        ndf=4,
        num_blocks=1,
        max_size=2,
        save_freq=1000,
        sample_freq=1000,
        log_freq=1,
        checkpoint_dir=os.path.join(root, name, "ckpt"),
        sample_dir=os.path.join(root, name, "s"),
        log_dir=os.path.join(root, name, "logs"),
        num_sample_images=2,
    )
    values.update(changes)
    return CycleGANConfig(**values)


def _state(trainer):
    weights = [w.numpy() for m in trainer.models.values() for w in m.weights]
    optimizer = [v.numpy() for o in (trainer.g_optimizer, trainer.d_optimizer) for v in o.variables]
    pool = [
        trainer.pool.images_a.numpy(),
        trainer.pool.images_b.numpy(),
        trainer.pool.count.numpy(),
    ]
    return weights, optimizer, pool


def test_resume_continues_exactly(tiny_data):
    """A fresh trainer restored from step 3 and run to step 6 ends bit-identical (CPU) to a
    run that went from 0 to 6 without stopping."""
    straight_config = tiny_config(tiny_data, "resume", max_steps=6, save_freq=3)
    trainer = CycleGANTrainer(straight_config)
    summary = trainer.fit()
    assert summary["step"] == 6 and summary["epoch"] == 1  # 4 batches per epoch (min(5, 4))
    straight = _state(trainer)

    # Continue a copy of the folder as it was after step 3 (the straight run's ckpt-6 and
    # the files written after step 3 left out).
    source = os.path.join(tiny_data, "resume", "ckpt")
    folder = os.path.join(tiny_data, "resume_continued", "ckpt")
    os.makedirs(folder)
    for name in os.listdir(source):
        if name.startswith("ckpt-3") or name == "facegan_run.json":
            shutil.copy(os.path.join(source, name), folder)
    write_checkpoint_state(folder, ["ckpt-3"])
    continued = CycleGANTrainer(
        tiny_config(tiny_data, "resume_continued", max_steps=6, save_freq=3)
    )
    assert continued.restore().endswith("ckpt-3")
    assert int(continued.step.numpy()) == 3
    assert int(continued.g_optimizer.iterations.numpy()) == 3
    assert int(continued.pool.count.numpy()) == 2
    assert int(continued.batch_in_epoch.numpy()) == 3
    continued.fit()
    assert int(continued.step.numpy()) == 6 and int(continued.epoch.numpy()) == 1

    for ours, reference in zip(_state(continued), straight, strict=True):
        assert len(ours) == len(reference)
        for a, b in zip(ours, reference, strict=True):
            np.testing.assert_array_equal(a, b)
    assert os.path.isfile(os.path.join(tiny_data, "resume_continued", "s", "index.html"))


def test_same_seed_gives_same_initial_weights(tiny_data):
    first = CycleGANTrainer(tiny_config(tiny_data, "seed1"))
    second = CycleGANTrainer(tiny_config(tiny_data, "seed2"))
    third = CycleGANTrainer(tiny_config(tiny_data, "seed3", seed=7))
    a = first.models["generator_a2b"].weights[0].numpy()
    np.testing.assert_array_equal(a, second.models["generator_a2b"].weights[0].numpy())
    assert np.abs(a - third.models["generator_a2b"].weights[0].numpy()).max() > 0


def test_generator_loss_matches_independent_formula(tiny_data):
    config = tiny_config(tiny_data, "formula", use_lsgan=False, identity_lambda=0.5, max_size=0)
    trainer = CycleGANTrainer(config)
    folders = scan_unpaired_folders(tiny_data)
    rng = np.random.default_rng(4)
    real_a = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    real_b = rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    m = {k: v for k, v in trainer.models.items()}
    fake_b = m["generator_a2b"](real_a).numpy()
    fake_a = m["generator_b2a"](real_b).numpy()
    rec_a = m["generator_b2a"](fake_b).numpy()
    rec_b = m["generator_a2b"](fake_a).numpy()

    def bce(logits, target):
        logits = logits.astype(np.float64)
        return np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))))

    expected = (
        bce(m["discriminator_b"](fake_b).numpy(), 1.0)
        + bce(m["discriminator_a"](fake_a).numpy(), 1.0)
        + 10.0 * (np.abs(rec_a - real_a).mean() + np.abs(rec_b - real_b).mean())
        + 5.0
        * (
            np.abs(m["generator_a2b"](real_b).numpy() - real_b).mean()
            + np.abs(m["generator_b2a"](real_a).numpy() - real_a).mean()
        )
    )
    expected_d_b_real = bce(m["discriminator_b"](real_b).numpy(), 1.0)
    values = trainer.train_step({"real_a": tf.constant(real_a), "real_b": tf.constant(real_b)})
    assert float(values["g_loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(values["db_loss_real"]) == pytest.approx(expected_d_b_real, rel=1e-4)
    assert folders.train_a  # the folder scan sees the data


def test_adam_matches_tf1_settings(tiny_data):
    trainer = CycleGANTrainer(tiny_config(tiny_data, "adam"))
    for optimizer in (trainer.g_optimizer, trainer.d_optimizer):
        assert optimizer.epsilon == 1e-8
        assert optimizer.beta_1 == 0.5 and optimizer.beta_2 == 0.999


def test_learning_rate_in_force_follows_the_original_for_every_epoch(tiny_data):
    """lr(e) = lr for e < epoch_step, else lr * (epochs - e) / (epochs - epoch_step)."""
    config = tiny_config(tiny_data, "schedule", epochs=200, epoch_step=100)
    trainer = CycleGANTrainer(config)
    for epoch in range(200):
        expected = 2e-4 if epoch < 100 else 2e-4 * (200 - epoch) / (200 - 100)
        trainer.set_learning_rate(epoch)
        assert trainer.learning_rate == np.float32(expected), epoch
        assert float(trainer.d_optimizer.learning_rate.numpy()) == np.float32(expected)


def test_optimizer_moments_are_read_by_variable_path(tiny_data):
    trainer = CycleGANTrainer(tiny_config(tiny_data, "moments", max_size=0))
    kernel = trainer.models["discriminator_b"].weights[0]
    rng = np.random.default_rng(3)
    batch = {k: rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32) for k in ("real_a", "real_b")}
    assert np.all(trainer.optimizer_moments("discriminator", kernel.path)["m"] == 0)
    trainer.train_step(batch)
    moments = trainer.optimizer_moments("discriminator", kernel.path)
    assert moments["m"].shape == tuple(kernel.shape) and np.abs(moments["m"]).max() > 0
    # After one step m = (1 - beta1) g and v = (1 - beta2) g^2, with 1 - beta2 in float32 as
    # TF1's kernel computes it (0.99998713e-3).
    one_minus_beta2 = np.float32(1) - np.float32(0.999)
    np.testing.assert_allclose(
        moments["v"], one_minus_beta2 * (moments["m"] / np.float32(0.5)) ** 2, rtol=1e-6
    )
    with pytest.raises(ValueError, match="No trainable variable of the generator optimiser"):
        trainer.optimizer_moments("generator", kernel.path)
    with pytest.raises(ValueError, match="Received: which='critic'"):
        trainer.optimizer_moments("critic", kernel.path)


def test_checkpoint_folder_of_another_kind_is_refused(tmp_path, tiny_data):
    from facegan_tf.fileio import write_json_atomic
    from facegan_tf.training.checkpointing import CheckpointKindError
    from facegan_tf.training.cyclegan_inference import load_cyclegan_models

    folder = tmp_path / "dcgan_run"
    write_json_atomic(str(folder / "facegan_run.json"), {"kind": "dcgan", "config": {}})
    with pytest.raises(CheckpointKindError, match="holds a 'dcgan' model, expected 'cyclegan'"):
        load_cyclegan_models(str(folder))
    trainer = CycleGANTrainer(tiny_config(tiny_data, "kind", checkpoint_dir=str(folder)))
    with pytest.raises(CheckpointKindError, match="Refusing to save a 'cyclegan' checkpoint"):
        trainer.save()
    assert sorted(os.listdir(folder)) == ["facegan_run.json"]


def _finite_losses(summary):
    losses = summary["losses"]
    assert losses and all(np.isfinite(v) for v in losses.values()), losses


def test_mixed_precision_on_two_replicas_stays_finite_and_resumes_in_float32(tiny_data):
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs 2 logical CPUs (tests/conftest.py)")
    config = tiny_config(
        tiny_data, "mixed", mixed_precision=True, strategy="mirrored", max_steps=2, save_freq=2
    )
    trainer = CycleGANTrainer(config)
    assert trainer.replicas == 2
    generator = trainer.models["generator_a2b"]
    assert generator.compute_dtype == "float16"
    assert {v.dtype for m in trainer.models.values() for v in m.weights} == {"float32"}
    summary = trainer.fit(progress=False)
    assert summary["step"] == 2
    _finite_losses(summary)
    assert generator(np.zeros((1, 16, 16, 3), np.float32)).dtype == "float16"
    names = [name for name, _ in tf.train.list_variables(summary["checkpoint"])]
    assert any(name.startswith("loss_scale/") for name in names)
    assert any(name.startswith("g_optimizer/") for name in names)

    # A float32 run on one device resumes the mixed-precision checkpoint (and ignores the
    # loss scale); its weights are the saved float32 variables.
    plain = CycleGANTrainer(
        tiny_config(tiny_data, "mixed", max_steps=3, checkpoint_dir=config.checkpoint_dir)
    )
    plain.restore()
    assert int(plain.step.numpy()) == 2
    iterations = int(trainer.g_optimizer.iterations.numpy())
    assert int(plain.g_optimizer.iterations.numpy()) == iterations
    for ours, saved in zip(_state(plain)[0], _state(trainer)[0]):
        np.testing.assert_array_equal(ours, saved)


def test_float32_checkpoint_resumes_in_mixed_precision(tiny_data):
    first = CycleGANTrainer(tiny_config(tiny_data, "f32", max_steps=1))
    first.fit(progress=False)
    mixed = CycleGANTrainer(
        tiny_config(tiny_data, "f32", max_steps=2, mixed_precision=True)
    )
    assert mixed.restore().endswith("ckpt-1")
    assert int(mixed.g_optimizer.iterations.numpy()) == 1
    np.testing.assert_array_equal(
        mixed.models["discriminator_b"].weights[0].numpy(),
        first.models["discriminator_b"].weights[0].numpy(),
    )
    _finite_losses(mixed.fit(progress=False))


def test_xla_step_matches_the_plain_step(tiny_data):
    rng = np.random.default_rng(1)
    batch = {
        "real_a": tf.constant(rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)),
        "real_b": tf.constant(rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)),
    }
    plain = CycleGANTrainer(tiny_config(tiny_data, "noxla"))
    compiled = CycleGANTrainer(tiny_config(tiny_data, "xla", xla=True))
    expected = {k: float(v) for k, v in plain.train_step(batch).items()}
    values = {k: float(v) for k, v in compiled.train_step(batch).items()}
    assert all(np.isfinite(v) for v in values.values())
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    # Adam's first step is about lr * sign(g); compare at 1 % of lr = 2e-4.
    for ours, reference in zip(_state(compiled)[0], _state(plain)[0]):
        np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=2e-6)


def test_plain_batch_is_split_between_replicas(tiny_data):
    """train_step on a plain global batch under two replicas equals one device on the same
    batch (losses averaged over the global batch, gradients summed over replicas)."""
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs 2 logical CPUs (tests/conftest.py)")
    rng = np.random.default_rng(6)
    batch = {k: rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32) for k in ("real_a", "real_b")}
    single = CycleGANTrainer(tiny_config(tiny_data, "single", batch_size=2))
    mirrored = CycleGANTrainer(tiny_config(tiny_data, "mirrored", strategy="mirrored"))
    assert mirrored.replicas == 2
    expected = {k: float(v) for k, v in single.train_step(batch).items()}
    values = {k: float(v) for k, v in mirrored.train_step(batch).items()}
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
