"""IPCGAN and age-classifier trainers: exact resume, distribution, pretrained aux nets."""

import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.training.age_classifier import AgeClassifierConfig, AgeClassifierTrainer
from facegan_tf.training.ipcgan import IPCGANConfig, IPCGANTrainer


def _config(tiny, data, tmp, **changes):
    values = dict(tiny)
    values.update(
        list_dir=str(data / "lists"), image_root=str(data / "images"),
        checkpoint_dir=str(tmp / "ckpt"), sample_dir=str(tmp / "sample"), max_steps=2,
        val_interval=100, save_interval=100, log_freq=1, seed=3,
    )
    values.update(changes)
    return IPCGANConfig(**values)


def _state(trainer):
    models = [trainer.models["generator"], trainer.models["discriminator"]]
    weights = [v.numpy() for m in models for v in m.weights]
    slots = [v.numpy() for o in (trainer.g_optimizer, trainer.d_optimizer) for v in o.variables]
    return weights, slots


@pytest.fixture(scope="module")
def runs(tiny, tiny_data, tmp_path_factory):
    """Straight: 4 steps in one trainer, never stopped. Split: 2 steps and saved; then a fresh
    trainer restored from that checkpoint runs steps 3 and 4."""
    folder = tmp_path_factory.mktemp("resume")
    straight = IPCGANTrainer(_config(tiny, tiny_data, folder / "straight", max_steps=4))
    straight_summary = straight.fit(progress=False)
    first = IPCGANTrainer(_config(tiny, tiny_data, folder, max_steps=2))
    first.fit(progress=False)
    first_state = _state(first)
    resumed = IPCGANTrainer(_config(tiny, tiny_data, folder, max_steps=4))
    resumed.restore()
    restored_step = int(resumed.step.numpy())
    restored_state = _state(resumed)
    summary = resumed.fit(progress=False)
    return {
        "straight": straight, "straight_summary": straight_summary, "summary": summary,
        "first_state": first_state, "restored_step": restored_step,
        "restored_state": restored_state, "resumed": resumed, "split_dir": folder,
    }


def _assert_states_equal(ours, reference):
    for part_a, part_b in zip(ours, reference, strict=True):
        assert len(part_a) == len(part_b) > 0
        for a, b in zip(part_a, part_b):
            np.testing.assert_array_equal(a, b)


def test_resume_restores_step_weights_and_optimizer_state(runs):
    assert runs["restored_step"] == 2
    _assert_states_equal(runs["restored_state"], runs["first_state"])
    assert int(runs["resumed"].g_optimizer.iterations.numpy()) == 4


def test_resumed_run_equals_uninterrupted_run(runs):
    """Exact on CPU: weights, batch-norm statistics and debias state, Adam slots, losses."""
    _assert_states_equal(_state(runs["resumed"]), _state(runs["straight"]))
    losses = runs["summary"]["losses"]
    assert losses == runs["straight_summary"]["losses"]
    assert set(losses) == {"d_loss", "d_loss_real", "d_loss_fake1", "d_loss_fake2", "g_loss",
                           "fea_loss", "age_loss", "g_total_loss"}
    assert all(np.isfinite(v) for v in losses.values())
    # The run moved: the weights differ from the step-2 state.
    assert any(not np.array_equal(a, b)
               for a, b in zip(_state(runs["resumed"])[0], runs["first_state"][0]))


def test_samples_and_run_file(runs):
    folder = runs["split_dir"]
    assert (folder / "sample" / "4" / "test_2.png").is_file()
    assert (folder / "sample" / "index.html").is_file()
    assert (folder / "ckpt" / "facegan_run.json").is_file()


def test_other_widths_refuse_to_resume(runs, tiny, tiny_data):
    config = _config(tiny, tiny_data, runs["split_dir"], g_base_filters=6, max_steps=5)
    with pytest.raises(ValueError, match="g_base_filters"):
        IPCGANTrainer(config).restore()


def test_config_validation(tiny, tiny_data, tmp_path):
    with pytest.raises(ValueError, match="fea_layer_name='conv2'"):
        _config(tiny, tiny_data, tmp_path, fea_layer_name="conv2")
    with pytest.raises(ValueError, match="image_size=20"):
        _config(tiny, tiny_data, tmp_path, image_size=20)
    with pytest.raises(ValueError, match="batch_size=0"):
        _config(tiny, tiny_data, tmp_path, batch_size=0)


def test_two_replicas_with_synchronized_bn_match_one_device(tiny, tiny_data, tmp_path):
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs 2 logical CPUs (tests/conftest.py)")
    single = IPCGANTrainer(_config(tiny, tiny_data, tmp_path / "one", synchronized_bn=True,
                                   max_steps=1))
    double = IPCGANTrainer(_config(tiny, tiny_data, tmp_path / "two", synchronized_bn=True,
                                   max_steps=1, strategy="mirrored"))
    assert double.replicas == 2
    one = single.fit(progress=False)["losses"]
    two = double.fit(progress=False)["losses"]
    for name in ("d_loss", "g_loss", "fea_loss", "age_loss"):
        assert two[name] == pytest.approx(one[name], rel=1e-4, abs=1e-6), name
    # Weights after one Adam step are ~ lr * sign(gradient), blind to the gradients' scale;
    # Adam's moments after one step are 0.5 * g and 0.001 * g^2, so they hold the gradients
    # themselves (a wrong averaging over replicas, e.g. a sum, doubles m).
    for which, variables, others in (
        ("generator", single.g_variables, double.g_variables),
        ("discriminator", single.d_variables, double.d_variables),
    ):
        assert [v.path for v in variables] == [v.path for v in others] != []
        ones = {v.path: single.optimizer_moments(which, v.path) for v in variables}
        twos = {v.path: double.optimizer_moments(which, v.path) for v in variables}
        for key in ("m", "v"):
            # Biases before a batch-statistics batch norm have zero gradient in exact
            # arithmetic (float noise only): tolerances relative to the optimiser's largest.
            scale = max(float(np.abs(moments[key]).max()) for moments in ones.values())
            for path in ones:
                np.testing.assert_allclose(twos[path][key], ones[path][key], rtol=1e-3,
                                           atol=1e-4 * scale, err_msg=f"{path} {key}")
    # Synchronized batch norm: the same moving statistics in G (both of its updates see G's
    # weights before its Adam step). D's last three updates follow D's Adam step, which moves
    # the biases before its batch norms (zero gradient up to float noise) by ~ +-lr at random.
    for a, b in zip(single.models["generator"].non_trainable_weights,
                    double.models["generator"].non_trainable_weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)


def test_age_classifier_trains_and_feeds_the_ipcgan_trainer(tiny, tiny_data, tmp_path):
    config = AgeClassifierConfig(
        list_dir=str(tiny_data / "lists"), image_root=str(tiny_data / "images"), age_groups=3,
        batch_size=4, max_steps=2, conv_filters=(4, 4, 4, 4, 4), fc_units=8,
        embedding_units=4, input_size=67, checkpoint_dir=str(tmp_path / "aux"), log_freq=1,
    )
    trainer = AgeClassifierTrainer(config)
    assert len(trainer.faces.identity_names) == 4
    summary = trainer.fit(progress=False)
    assert summary["step"] == 2 and np.isfinite(summary["losses"]["loss"])
    ipcgan = IPCGANTrainer(_config(
        tiny, tiny_data, tmp_path / "gan", alexnet_pretrained_model=str(tmp_path / "aux"),
        age_pretrained_model=str(tmp_path / "aux"), max_steps=1,
    ))
    np.testing.assert_array_equal(ipcgan.alexnet.get_layer("conv5").kernel.numpy(),
                                  trainer.alexnet.get_layer("conv5").kernel.numpy())


def _age_classifier(tiny_data, folder, max_steps):
    return AgeClassifierTrainer(AgeClassifierConfig(
        list_dir=str(tiny_data / "lists"), image_root=str(tiny_data / "images"), age_groups=3,
        batch_size=4, max_steps=max_steps, conv_filters=(4, 4, 4, 4, 4), fc_units=8,
        embedding_units=4, input_size=67, checkpoint_dir=str(folder), log_freq=1, seed=5,
    ))


def _age_classifier_state(trainer):
    weights = [v.numpy() for m in (trainer.alexnet, trainer.age_head) for v in m.weights]
    return weights, [v.numpy() for v in trainer.optimizer.variables]


def test_age_classifier_resumes_exactly(tiny_data, tmp_path):
    straight = _age_classifier(tiny_data, tmp_path / "straight", 4)
    straight.fit(progress=False)
    _age_classifier(tiny_data, tmp_path / "split", 2).fit(progress=False)
    resumed = _age_classifier(tiny_data, tmp_path / "split", 4)
    assert resumed.restore().endswith("ckpt-2")
    assert int(resumed.step.numpy()) == 2 and int(resumed.optimizer.iterations.numpy()) == 2
    summary = resumed.fit(progress=False)
    assert summary["step"] == 4 and int(resumed.optimizer.iterations.numpy()) == 4
    ours, reference = _age_classifier_state(resumed), _age_classifier_state(straight)
    for part_a, part_b in zip(ours, reference):
        assert len(part_a) == len(part_b) > 0
        for a, b in zip(part_a, part_b):
            np.testing.assert_array_equal(a, b)
    # The run moved: weights differ from a fresh initialisation with the same seed.
    fresh = _age_classifier_state(_age_classifier(tiny_data, tmp_path / "fresh", 4))[0]
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, reference[0]))
    # Training surface.
    assert set(resumed.models) == {"alexnet", "age_head"}
    assert resumed.learning_rate == pytest.approx(1e-4)
    ours = resumed.optimizer_moments("optimizer", "alexnet/conv5/kernel")
    theirs = straight.optimizer_moments("optimizer", "alexnet/conv5/kernel")
    np.testing.assert_array_equal(ours["m"], theirs["m"])
    assert ours["m"].shape == ours["v"].shape == (3, 3, 2, 4) and np.abs(ours["m"]).max() > 0
    with pytest.raises(ValueError, match="which='model'"):
        resumed.optimizer_moments("model", "alexnet/conv5/kernel")


def _assert_finite(losses):
    assert losses and all(np.isfinite(v) for v in losses.values()), losses


@pytest.mark.parametrize("option", [
    "mixed_precision",
    "xla",
])
def test_ipcgan_mixed_precision_and_xla_stay_finite(option, tiny, tiny_data, tmp_path):
    trainer = IPCGANTrainer(_config(tiny, tiny_data, tmp_path, max_steps=2, **{option: True}))
    summary = trainer.fit(progress=False)
    assert summary["step"] == 2
    _assert_finite(summary["losses"])
    weights = [v for m in trainer.models.values() for v in m.weights]
    assert {v.dtype for v in weights} == {"float32"}
    expected = "float16" if option == "mixed_precision" else "float32"
    assert trainer.models["generator"].compute_dtype == expected


@pytest.mark.parametrize("option", ["mixed_precision", "xla"])
def test_age_classifier_mixed_precision_and_xla_stay_finite(option, tiny_data, tmp_path):
    trainer = AgeClassifierTrainer(AgeClassifierConfig(
        list_dir=str(tiny_data / "lists"), image_root=str(tiny_data / "images"), age_groups=3,
        batch_size=4, max_steps=2, conv_filters=(4, 4, 4, 4, 4), fc_units=8,
        embedding_units=4, input_size=67, checkpoint_dir=str(tmp_path / "aux"), log_freq=1,
        **{option: True},
    ))
    summary = trainer.fit(progress=False)
    assert summary["step"] == 2
    _assert_finite(summary["losses"])
    weights = [v for m in (trainer.alexnet, trainer.age_head) for v in m.weights]
    assert {v.dtype for v in weights} == {"float32"}
    if option == "mixed_precision":
        assert trainer.alexnet.compute_dtype == "float16"
        names = [name for name, _ in tf.train.list_variables(summary["checkpoint"])]
        assert any(name.startswith("loss_scale/") for name in names)


def test_ipcgan_writes_sample_images_to_tensorboard(runs):
    log_dir = runs["split_dir"] / "ckpt" / "logs"
    images = {}
    for name in sorted(os.listdir(log_dir)):
        if not name.startswith("events."):
            continue
        for event in tf.compat.v1.train.summary_iterator(str(log_dir / name)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    images.setdefault(value.tag, set()).add(event.step)
                    # [width, height, PNG...] of a 16 px image grid entry
                    encoded = tf.make_ndarray(value.tensor)
                    assert encoded[0] == b"16" and encoded[2][:4] == b"\x89PNG"
    assert {"samples/source", "samples/group_0", "samples/group_2"} <= set(images)
    assert 4 in images["samples/group_1"]
