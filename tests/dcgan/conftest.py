"""Shared helpers of the DCGAN / conditional-GAN tests: tiny image folders, tool runs."""

import os

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUALAB_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "dcgan_sualab")
SUALAB_RUN_DIR = os.path.join(SUALAB_FIXTURE, "DCGAN_training_FFHQ_z_100_96crop_01")


def _write_images(folder, count, size=(20, 20), mode="RGB", seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(array).convert(mode).save(os.path.join(folder, f"img_{i:03d}.png"))


@pytest.fixture(scope="session")
def write_images():
    """write_images(folder, count, size=(20, 20), mode="RGB", seed=0): random PNG files."""
    return _write_images


@pytest.fixture(scope="session")
def run_cli(tool):
    """run_cli("train_dcgan", "--flag=...") -> CompletedProcess of tools/<name>.py."""
    return tool


@pytest.fixture(scope="session")
def sualab_run_dir():
    return SUALAB_RUN_DIR


@pytest.fixture(scope="session")
def sualab_golden():
    with np.load(os.path.join(SUALAB_FIXTURE, "golden.npz")) as data:
        return {k: data[k] for k in data.files}


def last_json_line(stdout: str) -> dict:
    import json

    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


@pytest.fixture(scope="session")
def json_line():
    """json_line(stdout) -> the last JSON object printed by a tool."""
    return last_json_line
