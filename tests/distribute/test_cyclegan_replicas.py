"""CycleGAN under MirroredStrategy on the 2 logical CPUs of tests/conftest.py.

One step on 2 replicas with per-replica batch B must equal one step on one device with
batch 2B (losses are averaged over the global batch, gradients summed over replicas, and a
filling image pool returns the current fakes); a checkpoint written under 2 replicas must
restore under 1.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

pytestmark = pytest.mark.skipif(
    len(tf.config.list_logical_devices("CPU")) < 2,
    reason="needs 2 logical CPUs (tests/conftest.py splits the CPU)",
)


def tiny_config(folder, **changes):
    values = dict(
        dataset_dir=str(folder),
        epochs=2,
        epoch_step=1,
        load_size=16,
        fine_size=16,
        ngf=4,
        ndf=4,
        num_blocks=1,
        input_nc=1,
        output_nc=1,
        max_size=2,
        identity_lambda=0.5,
        checkpoint_dir=str(folder / "ckpt"),
        sample_dir=str(folder / "samples"),
        log_dir=str(folder / "logs"),
        seed=11,
    )
    values.update(changes)
    return CycleGANConfig(**values)


def global_batch(size=4):
    rng = np.random.default_rng(0)
    return {
        "real_a": rng.uniform(-1, 1, (size, 16, 16, 1)).astype(np.float32),
        "real_b": rng.uniform(-1, 1, (size, 16, 16, 1)).astype(np.float32),
    }


def one_step(trainer, batch):
    """Runs one step on ``batch`` (split across the trainer's replicas)."""
    dataset = tf.data.Dataset.from_tensors(batch)
    (distributed,) = list(trainer.strategy.experimental_distribute_dataset(dataset))
    return {k: float(v) for k, v in trainer.train_step(distributed).items()}


def model_weights(trainer):
    return {
        f"{name}/{v.path}": v.numpy() for name, m in trainer.models.items() for v in m.weights
    }


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    """A 1-device trainer (batch 4) and a 2-replica trainer (batch 2 per replica), both
    after one step on the same global batch of 4, plus their initial weights."""
    root = tmp_path_factory.mktemp("replicas")
    single = CycleGANTrainer(tiny_config(root / "one", batch_size=4))
    double = CycleGANTrainer(tiny_config(root / "two", batch_size=2, strategy="mirrored"))
    initial = (model_weights(single), model_weights(double))
    batch = global_batch(4)
    return {
        "single": single,
        "double": double,
        "initial": initial,
        "losses": (one_step(single, batch), one_step(double, batch)),
        "root": root,
    }


def test_the_runs_start_equal(stepped):
    assert stepped["double"].replicas == 2 and stepped["single"].replicas == 1
    assert stepped["double"].global_batch == stepped["single"].global_batch == 4
    one, two = stepped["initial"]
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def test_one_step_on_two_replicas_equals_one_step_on_one_device(stepped):
    one_losses, two_losses = stepped["losses"]
    assert one_losses.keys() == two_losses.keys()
    for name in one_losses:
        assert two_losses[name] == pytest.approx(one_losses[name], rel=1e-5, abs=1e-6), name
    one, two = model_weights(stepped["single"]), model_weights(stepped["double"])
    initial = stepped["initial"][0]
    moved = [name for name in one if not np.array_equal(one[name], initial[name])]
    assert any(name.startswith("generator") for name in moved)
    assert any(name.startswith("discriminator") for name in moved)
    # Adam's first update is lr * g / (|g| + eps): where |g| is near eps, float rounding of
    # the summed gradient shows; 1e-6 is 0.5 % of the largest possible update (lr = 2e-4).
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
    single_adam = stepped["single"].g_optimizer.variables
    double_adam = stepped["double"].g_optimizer.variables
    # Gradients are sums with cancellation: compare each slot at the scale of its tensor.
    for a, b in zip(single_adam, double_adam):
        scale = float(np.abs(a.numpy()).max())
        np.testing.assert_allclose(
            b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5 * scale, err_msg=a.path
        )


def test_checkpoint_of_two_replicas_restores_on_one(stepped):
    double = stepped["double"]
    path = double.save()
    assert os.path.basename(path) == "ckpt-1"
    folder = stepped["root"] / "two"
    # Same per-replica batch (the pool's shape), one replica.
    restored = CycleGANTrainer(tiny_config(folder, batch_size=2))
    assert restored.replicas == 1
    assert restored.restore() == path
    assert int(restored.step.numpy()) == 1
    assert int(restored.g_optimizer.iterations.numpy()) == 1
    ours, saved = model_weights(restored), model_weights(double)
    for name in saved:
        np.testing.assert_array_equal(ours[name], saved[name], err_msg=name)
    for a, b in zip(restored.d_optimizer.variables, double.d_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The pool holds replica 0's fakes of step 1: its count is 1 and its entry not empty.
    assert int(restored.pool.count.numpy()) == 1
    assert np.abs(restored.pool.images_a.numpy()[0]).max() > 0
