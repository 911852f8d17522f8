"""Three training iterations of the original, replayed through `CycleGANTrainer.train_step`.

The fixture ``tests/fixtures/cyclegan_xhujoy_train`` was recorded by running xhujoy's own
``train()`` (ResNet-9, ngf = ndf = 8, 64 px, LSGAN, batch 1) from the checkpoint of
``cyclegan_xhujoy_resnet`` with fresh Adam state, on fixed inputs. Here the same checkpoint is
loaded into the trainer's models and the same inputs go through the public training surface.

Tolerances come from the fixture's ``float32_noise_floor``: how far the original itself moves
when its weights are perturbed by one ulp or it runs in float64. Each figure may be at most
3 x that floor and at least 1e-4 (the README's suggestion); every threshold stays below the
effect of one Adam step (a wrong learning rate moves nearly every weight by more than lr / 10,
a gradient off by a factor moves Adam's first moment by tens of percent).
"""

import json
import os

import numpy as np
import pytest

from facegan_tf.migrate import load_legacy
from facegan_tf.migrate.cyclegan_xhujoy import weight_sources
from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer, learning_rate_for_epoch

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
TRAIN = os.path.join(FIXTURES, "cyclegan_xhujoy_train")
LEGACY = os.path.join(FIXTURES, "cyclegan_xhujoy_resnet", "checkpoint", "horse2zebra_64")
LOSS_NAMES = (
    "g_loss",
    "g_loss_a2b",
    "g_loss_b2a",
    "d_loss",
    "da_loss",
    "db_loss",
    "da_loss_real",
    "da_loss_fake",
    "db_loss_real",
    "db_loss_fake",
)


def _read(name):
    return dict(np.load(os.path.join(TRAIN, name)))


@pytest.fixture(scope="module")
def fixture_config():
    with open(os.path.join(TRAIN, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def tolerance(floor: float) -> float:
    return max(3.0 * floor, 1e-4)


@pytest.fixture(scope="module")
def replay(tmp_path_factory, fixture_config):
    """Runs the 3 recorded iterations; returns what the trainer held after each."""
    c = fixture_config
    config = CycleGANConfig(
        fine_size=c["fine_size"],
        load_size=c["fine_size"],
        ngf=c["ngf"],
        ndf=c["ndf"],
        num_blocks=c["num_blocks"],
        use_resnet=c["use_resnet"],
        use_lsgan=c["use_lsgan"],
        batch_size=c["batch_size"],
        l1_lambda=c["L1_lambda"],
        beta1=c["beta1"],
        adam_epsilon=c["adam_epsilon"],
        lr=c["lr"],
        epochs=c["epochs"],
        epoch_step=c["epoch_step"],
        max_size=c["max_size"],
        checkpoint_dir=str(tmp_path_factory.mktemp("replay") / "ckpt"),
    )
    trainer = CycleGANTrainer(config)
    legacy = load_legacy("cyclegan_xhujoy", LEGACY)
    for name, model in trainer.models.items():
        model.set_weights(legacy[name].get_weights())
    by_tf1_name = {s.tf1_name: s.variable for s in weight_sources(trainer.models)}
    generator_paths = {v.path for v in trainer.generator_variables}
    inputs = _read("train.npz")
    rates, losses, weights, moments = [], [], {}, {}
    for step in range(c["steps"]):
        rates.append(trainer.set_learning_rate(c["epoch"]))
        rates[-1] = trainer.learning_rate
        values = trainer.train_step(
            {"real_a": inputs["real_A"][step], "real_b": inputs["real_B"][step]}
        )
        losses.append({name: float(values[name]) for name in LOSS_NAMES})
        if step + 1 in (1, 3):
            weights[step + 1] = {n: v.numpy() for n, v in by_tf1_name.items()}
            moments[step + 1] = {
                n: trainer.optimizer_moments(
                    "generator" if v.path in generator_paths else "discriminator", v.path
                )["m"]
                for n, v in by_tf1_name.items()
                if n in c["adam_m_variables"]
            }
    return {
        "trainer": trainer,
        "rates": rates,
        "losses": losses,
        "weights": weights,
        "moments": moments,
        "inputs": inputs,
    }


def test_learning_rate_fed_equals_the_original(replay, fixture_config):
    c = fixture_config
    fed = replay["inputs"]["lr"]
    assert replay["rates"] == [float(np.float32(r)) for r in fed]
    config = replay["trainer"].config
    assert learning_rate_for_epoch(config, c["epoch"]) == c["lr_fed"]


@pytest.mark.parametrize("step", [1, 2, 3])
def test_losses_of_every_update(replay, fixture_config, step):
    floor = fixture_config["float32_noise_floor"]["per_step"][str(step)]["loss_rel"]
    limit = tolerance(floor)
    inputs = replay["inputs"]
    ours = replay["losses"][step - 1]
    relative = {
        name: abs(ours[name] - float(inputs[name][step - 1])) / abs(float(inputs[name][step - 1]))
        for name in LOSS_NAMES
    }
    print(f"step {step} loss max rel diff {max(relative.values()):.3g} (limit {limit:.3g})")
    assert max(relative.values()) <= limit, relative


@pytest.mark.parametrize("step", [1, 2, 3])
def test_fakes_go_through_the_pool_unchanged_while_it_fills(replay, fixture_config, step):
    """The pool of the original (50 entries) stores and returns each step's fakes while it
    has fewer than 50 entries; slot s of ours must hold step s's G(A) and F(B), computed
    with the weights before that step's update."""
    pool = replay["trainer"].pool
    assert int(pool.count.numpy()) == fixture_config["steps"]
    floor = fixture_config["float32_noise_floor"]["per_step"][str(step)]["fake_max"]
    limit = tolerance(floor)
    inputs = replay["inputs"]
    diff_a = np.abs(pool.images_a.numpy()[step - 1] - inputs["fake_A"][step - 1]).max()
    diff_b = np.abs(pool.images_b.numpy()[step - 1] - inputs["fake_B"][step - 1]).max()
    print(f"step {step} fake max abs diff A {diff_a:.3g} B {diff_b:.3g} (limit {limit:.3g})")
    assert max(diff_a, diff_b) <= limit
    np.testing.assert_array_equal(pool.images_a.numpy()[fixture_config["steps"] :], 0.0)


@pytest.mark.parametrize("step", [1, 3])
def test_every_weight_after_the_step(replay, fixture_config, step):
    """Fraction of weight elements off by more than lr / 10; the README advises against
    gating the maximum (near-zero gradients flip Adam's step between the original's own
    runs), which is reported."""
    expected = _read(fixture_config["weights_files"][str(step)])
    ours = replay["weights"][step]
    assert sorted(expected) == sorted(ours) and len(ours) == fixture_config["num_variables"]
    lr = fixture_config["lr"]
    off = sum(int((np.abs(ours[n] - expected[n]) > lr / 10).sum()) for n in expected)
    total = sum(v.size for v in expected.values())
    largest = max(float(np.abs(ours[n] - expected[n]).max()) for n in expected)
    floor = fixture_config["float32_noise_floor"]["after_step"][str(step)]["w_frac"]
    limit = tolerance(floor)
    print(
        f"after step {step}: fraction off by > lr/10 {off / total:.3g} (limit {limit:.3g}), "
        f"max abs diff {largest:.3g} ({largest / lr:.2f} lr)"
    )
    assert off / total <= limit


@pytest.mark.parametrize("step", [1, 3])
def test_adam_first_moments_after_the_step(replay, fixture_config, step):
    """||m - m_ref|| / ||m_ref|| over the generator tensors and over the discriminator
    tensors; after step 1, m = (1 - beta1) * gradient, so this holds the gradients."""
    expected = _read(fixture_config["adam_m_files"][str(step)])
    ours = replay["moments"][step]
    assert sorted(ours) == sorted(expected) == sorted(fixture_config["adam_m_variables"])
    floors = fixture_config["float32_noise_floor"]["after_step"][str(step)]
    for prefix, key in (("generator", "m_rel_g"), ("discriminator", "m_rel_d")):
        names = [n for n in expected if n.startswith(prefix)]
        difference = np.sqrt(sum(float(((ours[n] - expected[n]) ** 2).sum()) for n in names))
        reference = np.sqrt(sum(float((expected[n] ** 2).sum()) for n in names))
        limit = tolerance(floors[key])
        print(f"after step {step}: Adam m rel L2 {prefix} {difference / reference:.3g} "
              f"(limit {limit:.3g})")
        assert difference / reference <= limit
