"""One training step of every model family at its original's default image size.

Run as a script in a fresh process (TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at
start-up), e.g. ``TF_ENABLE_ONEDNN_OPTS=1 python tests/reliability/one_step_per_family.py``.
Networks are tiny (few filters, one or two residual blocks, batch 1 or 2); image sizes are
the defaults that matter for the convolution kernels TensorFlow picks:

* CycleGAN, ResNet and U-Net generators: 256 x 256 (xhujoy ``fine_size``);
* IPCGAN: 128 x 128, AlexNet input 227 x 227;
* DCGAN and the four conditional GANs: 64 x 64.

Prints one JSON line per family, ``{"family": ..., "losses": {...}}``, then ``"done"``. A
TensorFlow abort ends the process with a signal before ``done``; a non-finite loss exits 1.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)  # after PYTHONPATH, which therefore chooses the checkout

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FAMILIES = (
    "cyclegan_resnet",
    "cyclegan_unet",
    "ipcgan",
    "dcgan",
    "cgan",
    "cdcgan",
    "cwgan_gp",
    "acgan",
)


def _distributed(strategy, batch: dict):
    dataset = tf.data.Dataset.from_tensors(batch)
    return next(iter(strategy.experimental_distribute_dataset(dataset)))


def _cyclegan(run_dir: str, rng, use_resnet: bool):
    from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer

    config = CycleGANConfig(
        use_resnet=use_resnet,
        ngf=4,
        ndf=4,
        num_blocks=1,
        checkpoint_dir=os.path.join(run_dir, "checkpoint"),
        log_dir=os.path.join(run_dir, "logs"),
        sample_dir=os.path.join(run_dir, "sample"),
    )
    trainer = CycleGANTrainer(config)
    shape = (config.batch_size, config.fine_size, config.fine_size, 3)
    assert config.fine_size == 256, config.fine_size
    batch = {
        "real_a": rng.uniform(-1, 1, shape).astype(np.float32),
        "real_b": rng.uniform(-1, 1, shape).astype(np.float32),
    }
    return trainer.train_step(_distributed(trainer.strategy, batch))


def _ipcgan(run_dir: str, rng):
    from facegan_tf.networks.ipcgan import MEAN_RGB
    from facegan_tf.training.ipcgan import IPCGANConfig, IPCGANTrainer

    config = IPCGANConfig(
        batch_size=2,
        g_base_filters=4,
        num_blocks=1,
        d_base_filters=4,
        d_output_channels=8,
        alexnet_conv_filters=(4, 4, 4, 4, 4),
        alexnet_fc_units=8,
        alexnet_pretrained_model="",
        age_pretrained_model="",
        checkpoint_dir=os.path.join(run_dir, "checkpoint"),
        sample_dir=os.path.join(run_dir, "sample"),
    )
    assert (config.image_size, config.alexnet_input_size) == (128, 227)
    trainer = IPCGANTrainer(config)
    count, size, alex = config.batch_size, config.image_size, config.alexnet_input_size
    mean = np.asarray(MEAN_RGB, np.float32)
    batch = {
        "source": rng.uniform(0, 255, (count, size, size, 3)).astype(np.float32) - mean,
        "source_alexnet": rng.uniform(0, 255, (count, alex, alex, 3)).astype(np.float32) - mean,
        "real": rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32),
        "true_group": np.zeros((count,), np.int32),
        "false_group": np.ones((count,), np.int32),
    }
    return trainer.train_step(_distributed(trainer.strategy, batch))


def _gan_batch(trainer, rng, size: int, classes: int):
    count = trainer.config.batch_size
    batch = {
        "image": rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32),
        "label": rng.integers(0, classes, (count,)).astype(np.int32),
    }
    return _distributed(trainer.strategy, batch)


def _dcgan(run_dir: str, rng):
    from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer

    config = DCGANConfig(
        save_dir=run_dir, batch_size=2, z_dim=8, fc_channels=8, g_channels=4, d_channels=4
    )
    assert config.image_size == 64, config.image_size
    trainer = DCGANTrainer(config)
    return trainer.train_step(_gan_batch(trainer, rng, config.image_size, 1))


def _cgan(run_dir: str, rng, model: str):
    from facegan_tf.training.cgan import ConditionalGANConfig, ConditionalGANTrainer

    config = ConditionalGANConfig(
        model=model,
        save_dir=run_dir,
        num_classes=2,
        batch_size=2,
        z_dim=8,
        g_channels=4,
        d_channels=4,
        fc_channels=8,
        mlp_g_units=(8, 8),
        mlp_d_units=(8, 8),
        n_critic=1,
    )
    assert config.image_size == 64, config.image_size
    trainer = ConditionalGANTrainer(config)
    return trainer.train_step(_gan_batch(trainer, rng, config.image_size, 2))


def run_family(family: str, run_dir: str) -> dict:
    """One ``train_step`` of ``family``; returns its losses as floats."""
    rng = np.random.default_rng(0)
    if family.startswith("cyclegan"):
        values = _cyclegan(run_dir, rng, use_resnet=family == "cyclegan_resnet")
    elif family == "ipcgan":
        values = _ipcgan(run_dir, rng)
    elif family == "dcgan":
        values = _dcgan(run_dir, rng)
    else:
        values = _cgan(run_dir, rng, family)
    losses = {}
    for name, value in values.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and array.size == 1:
            losses[name] = float(array.reshape(()))
    return losses


def main(families=FAMILIES) -> int:
    logging.getLogger("facegan_tf").setLevel(logging.ERROR)
    status = 0
    for family in families:
        with tempfile.TemporaryDirectory(prefix=f"one_step_{family}_") as run_dir:
            losses = run_family(family, run_dir)
        print(json.dumps({"family": family, "losses": losses}), flush=True)
        if not losses or not all(math.isfinite(v) for v in losses.values()):
            status = 1
    print("done", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or FAMILIES))
