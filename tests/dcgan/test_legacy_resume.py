"""Continuing the training of a converted sualab checkpoint with the original's Adam state."""

import os

import numpy as np
import pytest

from facegan_tf.migrate.dcgan_sualab import (
    ADAM_STATE_FILE,
    BETA_POWER_SUFFIX,
    convert_dcgan_sualab,
    weight_sources,
)
from facegan_tf.migrate.tf1 import LegacyCheckpoint
from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer

#: The fixture checkpoint's widths (tests/fixtures/dcgan_sualab).
WIDTHS = dict(image_size=64, z_dim=100, fc_channels=16, g_channels=8, d_channels=8)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, sualab_run_dir):
    folder = str(tmp_path_factory.mktemp("legacy") / "converted")
    convert_dcgan_sualab(sualab_run_dir, folder)
    return folder


def resumed_trainer(folder, **changes) -> DCGANTrainer:
    values = dict(WIDTHS, save_dir=folder, batch_size=2, crop_size=0, **changes)
    trainer = DCGANTrainer(DCGANConfig(**values))
    trainer.restore()
    return trainer


def test_restore_takes_weights_and_adam_state_of_the_legacy_file(converted, sualab_run_dir):
    assert os.path.isfile(os.path.join(converted, ADAM_STATE_FILE))
    trainer = resumed_trainer(converted)
    legacy = LegacyCheckpoint(sualab_run_dir)
    sources = weight_sources(trainer.models["generator"], trainer.models["discriminator"])
    slots = 0
    for source in sources:
        np.testing.assert_array_equal(source.variable.numpy(), legacy.get(source.tf1_name))
        if source.variable.trainable:
            owner = source.tf1_name.split("/")[0]
            moments = trainer.optimizer_moments(owner, source.variable.path)
            np.testing.assert_array_equal(moments["m"], legacy.get(f"{source.tf1_name}/Adam"))
            np.testing.assert_array_equal(moments["v"], legacy.get(f"{source.tf1_name}/Adam_1"))
            slots += 2
    assert slots == 68
    for owner, suffix in BETA_POWER_SUFFIX.items():
        # TF1 keeps beta2^(k + 1) after k updates; Keras corrects with beta2^(iterations + 1).
        beta2_power = float(legacy.get(f"beta2_power{suffix}"))
        updates = round(np.log(beta2_power) / np.log(0.999)) - 1
        iterations = int(trainer.optimizers[owner].iterations.numpy())
        assert iterations == updates
        assert 0.999 ** (iterations + 1) == pytest.approx(beta2_power, rel=5e-4)
    assert trainer.learning_rate == pytest.approx(2e-4)


def test_a_step_runs_after_the_restore(converted):
    trainer = resumed_trainer(converted)
    before = int(trainer.optimizers["generator"].iterations.numpy())
    rng = np.random.default_rng(0)
    losses = trainer.train_step({"image": rng.uniform(-1, 1, (2, 64, 64, 3))})
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert int(trainer.step.numpy()) == 1
    assert int(trainer.optimizers["generator"].iterations.numpy()) == before + 2


def test_other_widths_are_refused_naming_the_flags(converted):
    with pytest.raises(ValueError, match=r"pass --G_channel=8\. Received: G_channel=16"):
        resumed_trainer(converted, g_channels=16)


def test_train_dcgan_resume_accepts_a_converted_folder(
    tmp_path, converted, run_cli, json_line, write_images
):
    import shutil

    folder = str(tmp_path / "converted")
    shutil.copytree(converted, folder)
    write_images(str(tmp_path / "faces"), 4, size=(64, 64))
    result = run_cli(
        "train_dcgan",
        f"--save_dir={folder}",
        "--continue_train",
        f"--data_dir={tmp_path / 'faces'}",
        "--crop_size=0",
        "--batch_size=2",
        "--G_FC_layer_channel=16",
        "--G_channel=8",
        "--D_channel=8",
        "--max_steps=1",
        "--sample_H=1",
        "--sample_W=2",
        "--batch_size_eval=2",
        "--nofid",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resumed {folder} at step 0" in result.stdout
    assert json_line(result.stdout)["step"] == 1
    assert os.path.isfile(os.path.join(folder, "facegan_run.json"))
