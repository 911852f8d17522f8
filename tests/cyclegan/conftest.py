"""Shared helpers of the CycleGAN tests."""

import os

import numpy as np
import pytest

from facegan_tf.data.images import save_image


def write_random_images(folder, count, seed, prefix="img_", size=20):
    """Writes ``count`` random RGB PNGs ``<prefix><i>.png`` into ``folder``."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        save_image(
            os.path.join(folder, f"{prefix}{i}.png"),
            rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        )


@pytest.fixture(scope="session")
def random_images():
    """random_images(folder, count, seed, prefix="img_", size=20): random PNG files."""
    return write_random_images
