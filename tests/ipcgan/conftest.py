"""Shared tiny IPCGAN settings and data for tests/ipcgan."""

import os

import numpy as np
import pytest
from PIL import Image

GOLDEN_ENV = "FACEGAN_GOLDEN_DIR"

TINY = {
    "batch_size": 4,
    "image_size": 16,
    "g_base_filters": 4,
    "num_blocks": 1,
    "d_base_filters": 4,
    "d_output_channels": 8,
    "alexnet_conv_filters": (4, 4, 4, 4, 4),
    "alexnet_fc_units": 8,
    "alexnet_input_size": 67,
    "alexnet_pretrained_model": "",
    "age_pretrained_model": "",
    "age_groups": 3,
}


@pytest.fixture(scope="session")
def golden_folder():
    """``$FACEGAN_GOLDEN_DIR/ipcgan`` or a pytest skip with the reason."""
    root = os.environ.get(GOLDEN_ENV)
    if not root:
        pytest.skip(f"{GOLDEN_ENV} is not set (point it at shared/golden to run this test)")
    folder = os.path.join(root, "ipcgan")
    if not os.path.isfile(os.path.join(folder, "golden.npz")):
        pytest.skip(f"{folder} has no golden.npz ({GOLDEN_ENV}={root})")
    return folder


def write_faces(folder, names, size=24, seed=0):
    """Random smooth RGB faces (uint8 PNG/JPEG by extension) named ``names``."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        base = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        image = Image.fromarray(base).resize((size, size), Image.BILINEAR)
        image.save(os.path.join(folder, name))
    return [os.path.join(folder, n) for n in names]


@pytest.fixture(scope="session")
def faces():
    return write_faces


@pytest.fixture(scope="session")
def tiny():
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A 3-group data set: images/, lists/ (train lists, source.txt), test/, pad/."""
    from facegan_tf.data.ipcgan_lists import write_lists

    root = tmp_path_factory.mktemp("ipcgan_data")
    names = [f"{20 + i % 3 * 10}_Person_{i % 4}_{i:04d}.png" for i in range(24)]
    write_faces(str(root / "images"), names)
    groups = {g: [n for i, n in enumerate(names) if i % 3 == g] for g in range(3)}
    write_lists(str(root / "lists"), groups, groups[0], "train", 3)
    write_faces(str(root / "test"), ["a.png", "Zoë_ü.jpg"], seed=1)
    write_faces(str(root / "pad"), [f"pad_{i}.png" for i in range(3)], seed=2)
    return root


@pytest.fixture(scope="session")
def cli(tool):
    """Runs ``facegan_tf.cli.<name>``'s ``run()`` with ``args`` in-process (the `tool` fixture)."""
    return tool
