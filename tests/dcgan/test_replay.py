"""Two training iterations of sualab's DCGAN replayed against the original's own run.

tests/fixtures/dcgan_sualab_train (README in ../shared/golden/dcgan_sualab_train) holds what
the original's ``Optimizer._step`` computed, twice, from the checkpoint of the forward fixture
with fresh Adam, on a fixed batch ``x_real`` and fixed ``z``: the D loss and both G losses of
every step, all 48 model variables after each step (moving statistics included), and Adam's
first moment of two kernels. Our trainer is built from its config, filled from the same
checkpoint, and runs the same two iterations through its public ``train_step``.

Tolerances (the fixture's float32 noise floor, all below one Adam step lr = 2e-4):

* losses: 4e-6 relative (README: 3e-6 for a float32 port; measured here up to 2.9e-6);
* trainable weights: 7e-6 (README) with oneDNN off; 1e-5 with oneDNN on, whose convolution
  kernels move one generator kernel entry by 8.1e-6 (lr / 25);
* biases that feed a batch norm have a zero gradient in theory, so Adam moves them by the
  sign of rounding noise, up to 2 lr per update in the original itself: they are held to
  2 lr x (updates of their optimiser so far), and so is the moving mean of the batch norm
  they feed (it averages them in). The three D-statistics orders of the fixture differ by
  more than 5 times these bounds (0.0056 against 4e-4 at step 1, 0.0078 against 8e-4 at
  step 2), which the test checks;
* moving variances (which no bias reaches): 1e-6 relative + 1e-7;
* Adam first moments: 2e-6 of their largest entry (README).

The moving statistics discriminate the batch-norm semantics: Keras' biased moving variance
is off by var / (n - 1) (1.6 % for the 4 x 4 maps), and a trainer that does not run D on the
real batch in the G updates gives D's statistics 4 updates per step instead of 6.
"""

import json
import os

import numpy as np
import pytest

from facegan_tf.migrate.dcgan_sualab import load, weight_sources
from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
FIXTURE = os.path.join(FIXTURES, "dcgan_sualab_train")
SUALAB_RUN_DIR = os.path.join(FIXTURES, "dcgan_sualab", "DCGAN_training_FFHQ_z_100_96crop_01")
ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
WEIGHT_ATOL = 1e-5 if ONEDNN else 7e-6
LOSS_RTOL = 4e-6
VARIANCE_RTOL, VARIANCE_ATOL = 1e-6, 1e-7
ADAM_M_RTOL = 2e-6
#: Biases followed by a batch norm (zero gradient in theory), and the norm each one feeds.
BN_FED_BIASES = {
    "generator/biases": "generator/batch_normalization",
    "generator/conv2d_transpose/bias": "generator/batch_normalization_1",
    "generator/conv2d_transpose_1/bias": "generator/batch_normalization_2",
    "generator/conv2d_transpose_2/bias": "generator/batch_normalization_3",
    "discriminator/conv2d_1/bias": "discriminator/batch_normalization",
    "discriminator/conv2d_2/bias": "discriminator/batch_normalization_1",
    "discriminator/conv2d_3/bias": "discriminator/batch_normalization_2",
}


@pytest.fixture(scope="module")
def golden():
    with np.load(os.path.join(FIXTURE, "golden.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def meta():
    with open(os.path.join(FIXTURE, "meta.json"), encoding="utf-8") as f:
        return json.load(f)


def sualab_trainer(meta, save_dir) -> DCGANTrainer:
    """Our trainer with the fixture's widths and Adam constants, holding the checkpoint's
    model tensors (Adam fresh, as the original's run)."""
    config = DCGANConfig(
        save_dir=str(save_dir),
        image_size=meta["image_size"],
        batch_size=meta["batch_size"],
        z_dim=meta["z_dim"],
        fc_channels=meta["G_FC_layer_channel"],
        g_channels=meta["G_channel"],
        d_channels=meta["D_channel"],
        init_learning_rate=meta["learning_rate"],
        beta1=meta["adam"]["beta1"],
        beta2=meta["adam"]["beta2"],
        eps=meta["adam"]["epsilon"],
        g_steps_per_d=meta["updates_per_step"].count("G"),
    )
    trainer = DCGANTrainer(config)
    legacy, _ = load("dcgan_sualab", SUALAB_RUN_DIR)
    for name in ("generator", "discriminator"):
        trainer.models[name].set_weights(legacy[name].get_weights())
    return trainer


@pytest.fixture(scope="module")
def replay(golden, meta, tmp_path_factory):
    """Per step: the returned losses, every variable by TF1 name, and the two Adam moments."""
    trainer = sualab_trainer(meta, tmp_path_factory.mktemp("replay"))
    assert trainer.learning_rate == pytest.approx(float(golden["learning_rate"]), rel=1e-7)
    sources = weight_sources(trainer.models["generator"], trainer.models["discriminator"])
    paths = {s.tf1_name: s.variable.path for s in sources}
    steps = []
    for step in range(meta["steps"]):
        losses = trainer.train_step({"image": golden["x_real"]}, z=golden["z"][step])
        steps.append(
            {
                "losses": {k: float(v) for k, v in losses.items()},
                "variables": {s.tf1_name: s.variable.numpy() for s in sources},
                "adam_m": {
                    name: trainer.optimizer_moments(name.split("/")[0], paths[name])["m"]
                    for name in meta["adam_m_variables"]
                },
            }
        )
    return steps


def updates_so_far(tf1_name: str, step: int) -> int:
    """Adam updates of the optimiser owning ``tf1_name`` after ``step`` (1-based) steps."""
    return 2 * step if tf1_name.startswith("generator") else step


def test_losses_of_every_update(replay, golden):
    for step, record in enumerate(replay):
        losses = record["losses"]
        assert losses["d_loss"] == pytest.approx(float(golden["d_loss"][step]), rel=LOSS_RTOL)
        for update in range(2):
            assert losses[f"g_loss_{update + 1}"] == pytest.approx(
                float(golden["g_loss"][step, update]), rel=LOSS_RTOL
            ), (step, update)
        assert losses["g_loss"] == losses["g_loss_2"]


def test_trainable_weights(replay, golden, meta):
    lr = meta["learning_rate"]
    checked = 0
    for step, record in enumerate(replay, start=1):
        for name, value in record["variables"].items():
            if "moving_" in name:
                continue
            expected = golden[f"step{step}/{name}"]
            atol = 2 * lr * updates_so_far(name, step) if name in BN_FED_BIASES else WEIGHT_ATOL
            np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=(step, name))
            checked += 1
    assert checked == 2 * 34


def moving_tolerances(name: str, step: int, lr: float) -> dict:
    norm, statistic = name.rsplit("/", 1)
    if statistic == "moving_variance":
        return {"rtol": VARIANCE_RTOL, "atol": VARIANCE_ATOL}
    (bias,) = [b for b, fed in BN_FED_BIASES.items() if fed == norm]
    return {"rtol": 0, "atol": 2 * lr * updates_so_far(bias, step)}


def test_generator_moving_statistics(replay, golden, meta):
    checked = 0
    for step, record in enumerate(replay, start=1):
        for name, value in record["variables"].items():
            if name.startswith("generator") and "moving_" in name:
                tolerance = moving_tolerances(name, step, meta["learning_rate"])
                expected = golden[f"step{step}/{name}"]
                np.testing.assert_allclose(value, expected, err_msg=(step, name), **tolerance)
                checked += 1
    assert checked == 2 * 8


def test_discriminator_moving_statistics_real_then_fake(replay, golden, meta):
    """Six updates per step (D update and both G updates: real batch, then fake batch)."""
    checked = 0
    for step, record in enumerate(replay, start=1):
        for name, value in record["variables"].items():
            if name.startswith("discriminator") and "moving_" in name:
                tolerance = moving_tolerances(name, step, meta["learning_rate"])
                expected = golden[f"step{step}/{name}"]
                np.testing.assert_allclose(value, expected, err_msg=(step, name), **tolerance)
                for other in ("alt_concurrent", "alt_fake_then_real"):
                    assert np.abs(golden[f"{other}/step{step}/{name}"] - expected).max() > 5 * (
                        tolerance["atol"] + tolerance["rtol"] * np.abs(expected).max()
                    ), (other, name)
                checked += 1
    assert checked == 2 * 6


def test_adam_first_moments(replay, golden):
    for name, value in replay[0]["adam_m"].items():
        expected = golden[f"step1_adam_m/{name}"]
        atol = ADAM_M_RTOL * np.abs(expected).max()
        np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=name)


def test_clean_d_statistics_option_gives_four_updates(golden, meta, tmp_path):
    """``d_stats_in_g_updates=False``: D's statistics see only the passes each update needs
    (D update: real and fake; each G update: fake), numpy moving averages of the original's
    recorded batch statistics in that order."""
    import dataclasses

    trainer = sualab_trainer(meta, tmp_path)
    trainer.config = dataclasses.replace(trainer.config, d_stats_in_g_updates=False)
    trainer.train_step({"image": golden["x_real"]}, z=golden["z"][0])
    decay = np.float32(1) - np.float32(0.9)
    legacy, _ = load("dcgan_sualab", SUALAB_RUN_DIR)
    start = {s.tf1_name: s.variable.numpy() for s in weight_sources(*legacy.values())}
    ours = {
        s.tf1_name: s.variable.numpy()
        for s in weight_sources(trainer.models["generator"], trainer.models["discriminator"])
    }
    for name in [n for n in ours if n.startswith("discriminator") and "/moving_" in n]:
        norm, statistic = name.rsplit("/", 1)
        moving = start[name]
        for update, passes in (("D", ("real", "fake")), ("G1", ("fake",)), ("G2", ("fake",))):
            for source in passes:
                batch = golden[f"bn_update_input/step1/{update}/{name}/{source}"]
                moving = moving - (moving - batch) * decay
        tolerance = moving_tolerances(name, 1, meta["learning_rate"])
        np.testing.assert_allclose(ours[name], moving, err_msg=name, **tolerance)
        assert np.abs(golden[f"step1/{name}"] - moving).max() > 1e-3, name
