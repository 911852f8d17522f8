"""Shared helpers of the reliability tests: broken and unusual image files, folder hashes and a
tiny CycleGAN checkpoint folder."""

import hashlib
import io
import os
import sys

import numpy as np
import pytest
from PIL import Image

#: Tiny CycleGAN used wherever a real checkpoint folder is needed.
TINY = dict(
    load_size=16, fine_size=16, ngf=4, ndf=4, num_blocks=1, input_nc=1, output_nc=1,
    max_size=2, save_freq=1, sample_freq=1000, log_freq=1000, max_to_keep=3,
)
TINY_FLAGS = [
    "--load_size=16", "--fine_size=16", "--ngf=4", "--ndf=4", "--num_blocks=1",
    "--input_nc=1", "--output_nc=1", "--max_size=2", "--print_freq=1000", "--log_freq=1000",
]


_SIGINT_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def with_default_sigint(argv: list[str]) -> list[str]:
    """``argv`` started with SIGINT at its default disposition.

    A child inherits an ignored SIGINT (a test session started with ``nohup`` or as a
    background job), and the tools rightly keep it ignored; tests that send Ctrl-C run the
    child through this small launcher, which resets SIGINT and execs ``argv`` in the same
    process (same pid).
    """
    return [sys.executable, "-c", _SIGINT_DEFAULT, *argv]


def png_bytes(array, **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **params)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **params)
    return buffer.getvalue()


def broken_files() -> dict[str, bytes]:
    """File name -> bytes of files that are not decodable images."""
    rgb = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    good_jpeg = jpeg_bytes(Image.fromarray(rgb))
    good_png = png_bytes(rgb)
    corrupt_jpeg = good_jpeg[:200] + bytes(range(256)) * 4
    return {
        "corrupt.jpg": corrupt_jpeg,
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "truncated.png": good_png[: len(good_png) // 2],
        "corrupt.png": good_png[:40] + b"\x00" * 200 + good_png[240:],
        "zero_byte.png": b"",
        "text.jpg": b"this is not an image, just text with an image extension\n" * 5,
    }


def write(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def write_gray_pngs(folder, count, seed=0, size=16, prefix="img_"):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(
            os.path.join(folder, f"{prefix}{i}.png")
        )


def tree_digest(folder) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder``."""
    digests = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return digests


def assert_checkpoint_loads(checkpoint_dir):
    """The latest checkpoint and every one the state file lists read completely."""
    import tensorflow as tf

    from facegan_tf.training.checkpointing import listed_checkpoints

    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    assert latest is not None
    names = listed_checkpoints(str(checkpoint_dir))
    assert os.path.basename(latest) == names[-1]
    for name in names:
        reader = tf.train.load_checkpoint(os.path.join(str(checkpoint_dir), name))
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    return latest


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory):
    """A tiny CycleGAN checkpoint folder (checkpoints at steps 1 and 2, no training) and its
    data folder: (root, checkpoint_dir, data_dir)."""
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

    root = tmp_path_factory.mktemp("cyclegan_run")
    data = root / "data"
    for sub in ("trainA", "trainB", "testA", "testB"):
        write_gray_pngs(data / sub, 3, seed=len(sub) + ord(sub[-1]))
    config = CycleGANConfig(
        dataset_dir=str(data), checkpoint_dir=str(root / "checkpoint"),
        sample_dir=str(root / "sample"), log_dir=str(root / "logs"), **TINY,
    )
    trainer = CycleGANTrainer(config)
    for step in (1, 2):
        trainer.step.assign(step)
        trainer.save()
    return root, root / "checkpoint", data


#: Broken files a tool meets among good ones (header-broken and decode-broken).
BROKEN_FOR_TOOLS = {
    name: data
    for name, data in broken_files().items()
    if name in ("truncated.jpg", "zero_byte.png", "text.jpg")
}
