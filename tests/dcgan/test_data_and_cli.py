"""Bad inputs are refused with clear messages; the command-line tools run end to end."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from facegan_tf.data.faces import (
    center_crop_offset,
    load_class_folders,
    load_face_folder,
    preprocess_batch,
)
from facegan_tf.training.dcgan import DCGANConfig
from facegan_tf.training.gan_loop import check_new_run
from facegan_tf.training.gan_metrics import make_image_metrics


def test_center_crop_follows_sualab_offsets():
    assert center_crop_offset(128, 96) == 16
    image = np.zeros((1, 128, 128, 3), np.uint8)
    image[:, 16:112, 16:112] = 200
    out = preprocess_batch(image, 96, 64)
    assert out.shape == (1, 64, 64, 3) and (out == 200).all()


def test_mixed_modes_are_converted_to_rgb(tmp_path, write_images):
    for index, mode in enumerate(("L", "RGBA", "P", "RGB")):
        write_images(str(tmp_path / "faces"), 1, mode=mode, seed=index)
        os.rename(tmp_path / "faces" / "img_000.png", tmp_path / "faces" / f"{mode}.png")
    faces = load_face_folder(str(tmp_path / "faces"), crop_size=16, image_size=8)
    assert faces.images.shape == (4, 8, 8, 3) and faces.images.dtype == np.uint8


def test_mixed_sizes_are_refused_naming_the_file(tmp_path, write_images):
    write_images(str(tmp_path / "faces"), 2)
    Image.new("RGB", (30, 20)).save(tmp_path / "faces" / "zz_other.png")
    with pytest.raises(ValueError, match=r"zz_other\.png.* is 30x20 .* same size"):
        load_face_folder(str(tmp_path / "faces"), crop_size=0, image_size=8)


def test_crop_larger_than_images_is_refused(tmp_path, write_images):
    write_images(str(tmp_path / "faces"), 1)
    with pytest.raises(ValueError, match="crop_size=96 is larger than image"):
        load_face_folder(str(tmp_path / "faces"), crop_size=96, image_size=8)


def test_empty_class_folder_is_refused(tmp_path, write_images):
    write_images(str(tmp_path / "with_mask"), 2)
    os.makedirs(tmp_path / "without_mask")
    with pytest.raises(ValueError, match=r"Class folder .*without_mask.* holds no image files"):
        load_class_folders(str(tmp_path), image_size=8)


def test_single_class_is_refused(tmp_path, write_images):
    write_images(str(tmp_path / "faces"), 2)
    with pytest.raises(ValueError, match=r"1 class sub-folder\(s\).*at least two"):
        load_class_folders(str(tmp_path), image_size=8)


def test_class_labels_follow_folder_name_order(tmp_path, write_images):
    write_images(str(tmp_path / "without_mask"), 3)
    write_images(str(tmp_path / "with_mask"), 2)
    faces = load_class_folders(str(tmp_path), image_size=8)
    assert faces.class_names == ("with_mask", "without_mask")
    assert faces.labels.tolist() == [0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batch_size": 0}, "--batch_size must be >= 1"),
        ({"image_size": 48}, "--image_size must be a power of two"),
        ({"beta1": 1.0}, r"--beta1 must be in \[0, 1\)"),
        ({"z_distribution": "gauss"}, "--z_distribution must be one of"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        DCGANConfig(**overrides)


def test_missing_explicit_fid_weights_file_is_an_error(tmp_path):
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(
        FileNotFoundError, match=r"--fid_weights file .*missing\.npz.* does not exist"
    ):
        make_image_metrics({"": images}, str(tmp_path / "missing.npz"))


def test_a_fresh_run_refuses_a_folder_holding_one(tmp_path):
    check_new_run(str(tmp_path), resume=False)  # an empty folder is fine
    (tmp_path / "facegan_run.json").write_text('{"kind": "cgan", "config": {}}', encoding="utf-8")
    check_new_run(str(tmp_path), resume=True)
    with pytest.raises(ValueError, match=r"--save_dir .* already holds a run\. Pass --resume"):
        check_new_run(str(tmp_path), resume=False)


def test_train_cgan_cli_smoke(tmp_path, run_cli, json_line, write_images):
    write_images(str(tmp_path / "data" / "a"), 8, seed=1)
    write_images(str(tmp_path / "data" / "b"), 8, seed=2)
    save_dir = tmp_path / "run"
    result = run_cli(
        "train_cgan",
        "--model=cwgan_gp",
        f"--data_dir={tmp_path / 'data'}",
        f"--save_dir={save_dir}",
        "--image_size=8",
        "--batch_size=4",
        "--num_epochs=1",
        "--z_dim=4",
        "--G_FC_layer_channel=4",
        "--G_channel=2",
        "--D_channel=2",
        "--sample_H=1",
        "--sample_W=2",
        "--batch_size_eval=4",
        "--n_critic=2",
        "--nofid",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json_line(result.stdout)
    assert summary["step"] == 4 and summary["epoch"] == 1
    assert summary["metrics_note"] == "FID/KID off (--nofid)"
    status = json.loads((save_dir / "run_status.json").read_text(encoding="utf-8"))
    assert (status["state"], status["kind"], status["step"]) == ("completed", "cgan", 4)
    assert (save_dir / "samples" / "a_4.png").is_file()
    assert (save_dir / "samples" / "b_4.png").is_file()
    assert (save_dir / "learning_curve.png").is_file()
