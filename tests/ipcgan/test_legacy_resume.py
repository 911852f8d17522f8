"""Continuing the original's training from its ``acgan.model-N`` (converted with
``convert_tf1_checkpoint --kind=ipcgan``) through train_ipcgan's resume path."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.migrate.ipcgan import build_ipcgan_models, convert_ipcgan, weight_sources
from facegan_tf.training.ipcgan import IPCGANConfig, IPCGANTrainer

TINY_WIDTHS = {"g_base_filters": 4, "num_blocks": 1, "age_groups": 3, "d_base_filters": 4,
               "d_output_channels": 8}


def _tf1_arrays(widths, seed=0):
    """Random tensors under the original's TF1 names (debias state included)."""
    rng = np.random.default_rng(seed)
    models = build_ipcgan_models(widths, 16)
    arrays = {}
    for scope in ("generator", "discriminator"):
        for source in weight_sources(models[scope], scope, scope):
            shape = tuple(source.variable.shape)
            if source.tf1_name.endswith("/local_step"):
                value = np.float32(rng.integers(1000, 100000))
            elif source.tf1_name.endswith("moving_variance") or source.tf1_name.endswith("gamma"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0, 0.1, shape)
            arrays[source.tf1_name] = np.asarray(value, np.float32)
    return arrays


def _write_tf1_checkpoint(prefix, arrays):
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in arrays.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


def _config(tiny, tiny_data, folder, **changes):
    return IPCGANConfig(**{
        **tiny, "list_dir": str(tiny_data / "lists"), "image_root": str(tiny_data / "images"),
        "checkpoint_dir": str(folder / "converted"), "sample_dir": str(folder / "sample"),
        "max_steps": 1, "val_interval": 100, "save_interval": 100, "seed": 2, **changes,
    })


def _legacy_values(trainer):
    """Our variables -> the TF1 tensor name they map to."""
    return {source.tf1_name: source.variable
            for scope in ("generator", "discriminator")
            for source in weight_sources(trainer.models[scope], scope, scope)}


def test_converted_legacy_checkpoint_resumes_with_its_batch_norm_state(
        tiny, tiny_data, tmp_path):
    arrays = _tf1_arrays(TINY_WIDTHS)
    prefix = str(tmp_path / "tf1" / "acgan.model-19999")
    _write_tf1_checkpoint(prefix, arrays)
    convert_ipcgan("ipcgan", str(tmp_path / "tf1"), str(tmp_path / "converted"))

    trainer = IPCGANTrainer(_config(tiny, tiny_data, tmp_path))
    assert trainer.restore().endswith("ckpt-19999")
    # As the original's restart: step 0, Adam fresh (its checkpoints hold no Adam state).
    assert int(trainer.step.numpy()) == 0
    assert int(trainer.g_optimizer.iterations.numpy()) == 0
    ours = _legacy_values(trainer)
    assert set(ours) == set(arrays)
    for name, variable in ours.items():
        np.testing.assert_array_equal(variable.numpy(), arrays[name], err_msg=name)

    trainer.fit(progress=False)
    # One iteration: G's averages moved twice, D's six times, continuing the legacy counts.
    for name, variable in _legacy_values(trainer).items():
        if name.endswith("/local_step"):
            moves = 2 if name.startswith("generator/") else 6
            assert float(variable.numpy()) == arrays[name] + moves, name
    with open(tmp_path / "converted" / "facegan_run.json", encoding="utf-8") as f:
        assert json.load(f)["config"]["mirror_d_statistics"] is True
    # The folder is now a run of ours: a fresh trainer resumes it normally.
    again = IPCGANTrainer(_config(tiny, tiny_data, tmp_path, max_steps=2))
    assert again.restore().endswith("ckpt-1") and int(again.step.numpy()) == 1


def test_converted_checkpoint_with_other_widths_is_refused(tiny, tiny_data, tmp_path):
    _write_tf1_checkpoint(str(tmp_path / "tf1" / "acgan.model-9"),
                          _tf1_arrays({**TINY_WIDTHS, "g_base_filters": 6}))
    convert_ipcgan("ipcgan", str(tmp_path / "tf1"), str(tmp_path / "converted"))
    with pytest.raises(ValueError, match="g_base_filters: checkpoint 6 vs flags 4"):
        IPCGANTrainer(_config(tiny, tiny_data, tmp_path)).restore()


def test_cli_refuses_to_train_into_the_original_folder(tmp_path):
    from facegan_tf.cli.train_ipcgan import _refuse_unconverted_legacy

    _write_tf1_checkpoint(str(tmp_path / "acgan.model-5"), _tf1_arrays(TINY_WIDTHS))
    with pytest.raises(ValueError, match="convert_tf1_checkpoint.py --kind=ipcgan"):
        _refuse_unconverted_legacy(str(tmp_path), None)
    _refuse_unconverted_legacy(str(tmp_path / "new"), None)


def test_released_size_checkpoint_resumes(golden_folder, tiny, tiny_data, tmp_path):
    """The golden ``acgan.model-399999`` (released widths and names) through convert and the
    resume path, then one iteration (small images, random frozen AlexNet)."""
    legacy = os.path.join(golden_folder, "checkpoints", "0_conv5_lsgan_transfer_g75_0.5f-4_a30")
    convert_ipcgan("ipcgan", legacy, str(tmp_path / "converted"))
    widths = {"g_base_filters": 32, "num_blocks": 6, "age_groups": 5, "d_base_filters": 64,
              "d_output_channels": 512}
    trainer = IPCGANTrainer(_config(tiny, tiny_data, tmp_path, batch_size=2, **widths))
    trainer.restore()
    reader = tf.train.load_checkpoint(os.path.join(legacy, "acgan.model-399999"))
    ours = _legacy_values(trainer)
    assert len(ours) == 206
    for name, variable in ours.items():
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(name), err_msg=name)
    values = trainer.train_step({
        "source": np.zeros((2, 16, 16, 3), np.float32),
        "source_alexnet": np.zeros((2, 67, 67, 3), np.float32),
        "real": np.zeros((2, 16, 16, 3), np.float32),
        "true_group": np.array([1, 1], np.int32), "false_group": np.array([3, 3], np.int32),
    })
    assert all(np.isfinite(float(v)) for v in values.values())


def test_checkpoint_without_debias_state_resumes_as_plain_averages(tiny, tiny_data, tmp_path):
    """Checkpoints of ours written before the batch norms kept their debias state: the rest
    is restored and the averages continue (0.9 ** 1000 underflows: plain EMA from there)."""
    from facegan_tf.training.ipcgan_inference import load_ipcgan_models, without_debias_state

    old = IPCGANTrainer(_config(tiny, tiny_data, tmp_path))
    old.train_step({
        "source": np.full((4, 16, 16, 3), 20.0, np.float32) * np.arange(4)[:, None, None, None],
        "source_alexnet": np.zeros((4, 67, 67, 3), np.float32),
        "real": np.linspace(-1, 1, 4 * 16 * 16 * 3, dtype=np.float32).reshape(4, 16, 16, 3),
        "true_group": np.array([1, 1, 1, 1], np.int32),
        "false_group": np.array([0, 0, 0, 0], np.int32),
    })
    objects = {**old._checkpoint_objects,
               **{name: without_debias_state(model) for name, model in old.models.items()}}
    old._make_checkpoint(objects).save(1)
    names = [name for name, _ in tf.train.list_variables(str(tmp_path / "converted" / "ckpt-1"))]
    assert not any("biased" in name or "local_step" in name for name in names)

    resumed = IPCGANTrainer(_config(tiny, tiny_data, tmp_path, max_steps=2))
    resumed.restore()
    assert int(resumed.step.numpy()) == 1
    bn = resumed.models["discriminator"].get_layer("dis_bn1")
    reference = old.models["discriminator"].get_layer("dis_bn1")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), reference.moving_variance.numpy())
    np.testing.assert_array_equal(bn.moving_variance_biased.numpy(), bn.moving_variance.numpy())
    assert float(bn.moving_mean_local_step.numpy()) == 1000.0
    models, _ = load_ipcgan_models(str(tmp_path / "converted"), image_size=16)
    np.testing.assert_array_equal(
        models["generator"].get_layer("bn4").moving_mean.numpy(),
        old.models["generator"].get_layer("bn4").moving_mean.numpy())
