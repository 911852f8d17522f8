"""Parity with the original TF1 graph on the shared golden fixture (env-gated, ~1 minute)."""

import json
import os

import numpy as np
import pytest

CHECKPOINT = os.path.join("checkpoints", "0_conv5_lsgan_transfer_g75_0.5f-4_a30")


@pytest.fixture(scope="module")
def golden(golden_folder):
    folder = golden_folder
    from facegan_tf.migrate import load_legacy_with_info

    models, info = load_legacy_with_info("ipcgan", os.path.join(folder, CHECKPOINT))
    data = np.load(os.path.join(folder, "golden.npz"))
    return folder, models, info, data


def _close_logits(ours, reference):
    excess = np.abs(ours - reference) - (1e-4 + 1e-4 * np.abs(reference))
    return float(excess.max())


def test_converter_consumes_exactly_the_released_variable_set(golden):
    folder, _, info, _ = golden
    with open(os.path.join(folder, "vars.json"), encoding="utf-8") as f:
        names = {v["name"] for v in json.load(f)["variables"]}
    assert len(names) == 206
    bookkeeping = {n for n in names if n.endswith(("/biased", "/local_step"))}
    assert len(bookkeeping) == 80
    # The zero-debias state is loaded too (training continues the original's averages).
    assert not info["ignored"]
    assert set(info["loaded"]) == names
    assert len(info["loaded"]) == len(set(info["loaded"])) == 206
    assert info["g_base_filters"] == 32 and info["num_blocks"] == 6
    assert info["d_output_channels"] == 512 and info["age_groups"] == 5


def test_zero_debias_state_is_loaded_under_the_doubled_scope(golden):
    folder, models, _, _ = golden
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(folder, CHECKPOINT, "acgan.model-399999"))
    for model, layer, scope in (("generator", "unit_3_sub2_bn2", "generator/unit_3/sub2/bn2"),
                                ("discriminator", "dis_bn1", "discriminator/dis_bn1")):
        bn = models[model].get_layer(layer)
        for stat in ("moving_mean", "moving_variance"):
            np.testing.assert_array_equal(
                getattr(bn, f"{stat}_biased").numpy(),
                reader.get_tensor(f"{scope}/{scope}/{stat}/biased"))
            assert float(getattr(bn, f"{stat}_local_step").numpy()) == float(
                reader.get_tensor(f"{scope}/{scope}/{stat}/local_step"))


def test_generator_and_discriminator_match_original_outputs(golden):
    _, models, _, data = golden
    generator, discriminator = models["generator"], models["discriminator"]
    rows = data["g_rows"]
    before = [v.numpy().copy() for v in generator.non_trainable_weights]
    # Moving statistics first (inference mode; residual units still use batch statistics).
    out = generator(
        [data["g_input"], data["g_cond_128"][int(data["g_inference_bn_label"])]], training=False
    ).numpy()
    assert np.abs(out[rows] - data["g_out_inference_bn"]).max() < 1e-4
    logits = discriminator(
        [data["d_input"], data["d_cond_64"][int(data["d_inference_bn_label"])]], training=False
    ).numpy()
    assert _close_logits(logits[0], data["d_out_inference_bn"]) <= 0
    # Batch statistics (the original's test and training mode), without touching the model.
    for label in (0, 3):
        out = generator([data["g_input"], data["g_cond_128"][label]], training=True,
                        update_statistics=False).numpy()
        assert np.abs(out[rows] - data["g_out"][label]).max() < 1e-4, label
    for label in (1, 4):
        logits = discriminator([data["d_input"], data["d_cond_64"][label]], training=True,
                               update_statistics=False).numpy()
        assert _close_logits(logits[0], data["d_out"][label]) <= 0, label
    after = [v.numpy() for v in generator.non_trainable_weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_test_tool_on_legacy_folder_reproduces_row_zero(golden, tmp_path):
    """The faithful test path (padding batch from a folder) on the original's checkpoint."""
    folder, _, _, data = golden
    from facegan_tf.data.images import save_image
    from facegan_tf.training.ipcgan_inference import age_folder, load_ipcgan_models

    pixels = np.round(data["g_input"] + np.asarray([104.0, 117.0, 124.0], np.float32))
    pixels = pixels.astype(np.uint8)
    save_image(str(tmp_path / "test" / "face.png"), pixels[0])
    for i in range(1, 32):
        save_image(str(tmp_path / "train" / f"pad_{i:02d}.png"), pixels[i])
    models, info = load_ipcgan_models(os.path.join(folder, CHECKPOINT))
    assert info["source"] == "ipcgan_tf1"
    padding = sorted(str(p) for p in (tmp_path / "train").iterdir())
    age_folder(models["generator"], [str(tmp_path / "test" / "face.png")],
                        str(tmp_path / "out"), padding_paths=padding, target_groups=(2,),
                        progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["face.png", "face.png_2.jpg", "index.html"]
    from facegan_tf.data.images import read_image, to_uint8

    written = read_image(str(tmp_path / "out" / "face.png_2.jpg")).astype(np.float64)
    save_image(str(tmp_path / "expected.jpg"), to_uint8(data["g_out"][2][0]))
    expected = read_image(str(tmp_path / "expected.jpg")).astype(np.float64)
    # The random-weight output is noise, so compare through the same JPEG encoding.
    assert np.abs(written - expected).mean() < 0.5
    assert np.array_equal(read_image(str(tmp_path / "out" / "face.png")), pixels[0])
