"""Sampling from a trained DCGAN generator, after sualab ``test.py``.

`load_dcgan_generator` accepts three kinds of folders and tells which one it found:

* a run folder of ours (``facegan_run.json`` of kind ``dcgan``, written by
  ``tools/train_dcgan.py``): the generator is rebuilt from the saved config and restored from
  ``best/`` (the best-by-FID checkpoint, as sualab's ``test.py`` reads ``model_94.ckpt``) or
  from the latest checkpoint;
* a converted folder (``conversion.json`` + ``generator.keras``, written by
  `facegan_tf.migrate.dcgan_sualab.convert_dcgan_sualab`);
* a sualab TF1 checkpoint folder or ``model_N.ckpt`` prefix, converted on the fly.

`sample_dcgan` then writes what ``test.py`` writes: a ``sample_H`` x ``sample_W`` grid of
random samples (``sample_image_random``), a 1 x (W + 2) latent interpolation strip
z_k = z_a + k (z_b - z_a) / (W + 1), k = 0 .. W + 1 (``sample_image_interpolate``), and
optionally FID/KID of ``eval_sample_size`` samples against a folder of real images, plus
``metrics.json`` and ``index.html``. Every image comes from the generator in inference mode
(moving-average batch norm, the original's sampler). Unlike the original, nothing is ever
generated with random weights: a folder without a loadable checkpoint raises.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from facegan_tf.data.faces import load_images
from facegan_tf.data.images import list_images, to_uint8
from facegan_tf.fileio import write_json_atomic
from facegan_tf.migrate.dcgan_sualab import CONVERSION_FILE, SUALAB_CROP_SIZE
from facegan_tf.migrate.tf1 import STATE_FILE
from facegan_tf.training.checkpointing import RUN_INFO_FILE, read_run_info, restore_models
from facegan_tf.training.dcgan import KIND, DCGANConfig, interpolate_latents
from facegan_tf.training.samples import save_grid, write_gallery


def _has_tf_checkpoint(path: str) -> bool:
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, STATE_FILE)) or any(
            name.endswith(".index") for name in os.listdir(path)
        )
    return os.path.isfile(path + ".index") or (path.endswith(".index") and os.path.isfile(path))


def detect_checkpoint_kind(path: str) -> str:
    """``"facegan_tf"``, ``"converted"`` or ``"sualab_tf1"`` for ``path``.

    Raises:
        FileNotFoundError: ``path`` holds none of the three.
    """
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, RUN_INFO_FILE)):
            return "facegan_tf"
        if os.path.isfile(os.path.join(path, CONVERSION_FILE)):
            return "converted"
    if _has_tf_checkpoint(path):
        return "sualab_tf1"
    raise FileNotFoundError(
        f"No DCGAN checkpoint at --checkpoint_dir {path!r}: expected a run folder of "
        f"tools/train_dcgan.py ({RUN_INFO_FILE}), a folder converted by "
        f"tools/convert_tf1_checkpoint.py --kind=dcgan_sualab ({CONVERSION_FILE}), or a sualab "
        "TF1 checkpoint folder / model_N.ckpt prefix."
    )


def _load_run(path: str, use_best: bool) -> tuple[keras.Model, dict]:
    info = read_run_info(path)
    if info.get("kind") != KIND:
        raise ValueError(
            f"--checkpoint_dir {path!r} holds a {info.get('kind')!r} run; test_dcgan needs a "
            f"{KIND!r} run of tools/train_dcgan.py."
        )
    saved = info.get("config", {})
    fields = {f.name for f in dataclasses.fields(DCGANConfig)}
    config = DCGANConfig(**{k: v for k, v in saved.items() if k in fields})
    best_dir = os.path.join(path, "best")
    best = tf.train.latest_checkpoint(best_dir) if use_best and os.path.isdir(best_dir) else None
    checkpoint = best or tf.train.latest_checkpoint(path)
    if checkpoint is None:
        raise FileNotFoundError(
            f"--checkpoint_dir {path!r} has a {RUN_INFO_FILE} but no checkpoint (ckpt-<step>.index "
            "and a 'checkpoint' state file); the run saved nothing yet."
        )
    from facegan_tf.networks.dcgan import DCGANGenerator

    generator = DCGANGenerator(
        z_dim=config.z_dim,
        fc_channels=config.fc_channels,
        channels=config.g_channels,
        image_size=config.image_size,
        name="generator",
    )
    generator(tf.zeros((1, config.z_dim)))
    restore_models(checkpoint, generator=generator)
    return generator, {
        "source": "facegan_tf",
        "checkpoint": checkpoint,
        "best": bool(best),
        "z_dim": config.z_dim,
        "z_distribution": config.z_distribution,
        "image_size": config.image_size,
        "crop_size": config.crop_size,
    }


def _load_converted(path: str) -> tuple[keras.Model, dict]:
    with open(os.path.join(path, CONVERSION_FILE), encoding="utf-8") as f:
        record = json.load(f)
    model_path = os.path.join(path, "generator.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(
            f"--checkpoint_dir {path!r} has {CONVERSION_FILE} but no generator.keras; convert "
            "again with tools/convert_tf1_checkpoint.py --kind=dcgan_sualab."
        )
    try:
        generator = keras.models.load_model(model_path)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"Cannot load {model_path!r}: {error}") from error
    hyper = record.get("hyperparameters", {})
    return generator, {
        "source": "converted",
        "checkpoint": model_path,
        "legacy_prefix": record.get("source_prefix"),
        "z_dim": int(hyper.get("z_dim", generator.z_dim)),
        "z_distribution": "uniform",
        "image_size": int(hyper.get("image_size", generator.image_size)),
        "crop_size": int(record.get("crop_size", SUALAB_CROP_SIZE)),
    }


def _load_legacy(path: str) -> tuple[keras.Model, dict]:
    from facegan_tf.migrate import load_legacy_with_info

    models, info = load_legacy_with_info("dcgan_sualab", path)
    return models["generator"], {
        "source": "sualab_tf1",
        "checkpoint": info["prefix"],
        "z_dim": info["z_dim"],
        "z_distribution": "uniform",
        "image_size": info["image_size"],
        "crop_size": SUALAB_CROP_SIZE,
    }


def load_dcgan_generator(path: str, use_best: bool = True) -> tuple[keras.Model, dict]:
    """The generator stored at ``path`` (see the module docstring) and facts about it.

    Returns:
        (generator, info): ``info`` has ``source`` (``facegan_tf``, ``converted``,
        ``sualab_tf1``), ``checkpoint``, ``z_dim``, ``z_distribution`` (``uniform`` or
        ``normal``), ``image_size`` and ``crop_size`` (of the training data).
    """
    kind = detect_checkpoint_kind(path)
    if kind == "facegan_tf":
        return _load_run(path, use_best)
    if kind == "converted":
        return _load_converted(path)
    return _load_legacy(path)


def draw_z(rng: np.random.Generator, count: int, z_dim: int, distribution: str) -> np.ndarray:
    """z ~ U(-1, 1) (sualab) or N(0, 1), float32 [count, z_dim]."""
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, (count, z_dim)).astype(np.float32)
    if distribution == "normal":
        return rng.standard_normal((count, z_dim)).astype(np.float32)
    raise ValueError(
        f"z distribution must be 'uniform' or 'normal'. Received: z_distribution={distribution!r}"
    )


def make_sampler(generator: keras.Model, batch_size: int = 50):
    """A function z [N, z_dim] -> G(z) in inference mode (float32 [-1, 1]), in batches."""
    run = tf.function(lambda x: generator(x, training=False), reduce_retracing=True)

    def sample(z: np.ndarray) -> np.ndarray:
        outputs = [
            run(tf.constant(z[start : start + batch_size])).numpy()
            for start in range(0, len(z), batch_size)
        ]
        return np.concatenate(outputs)

    return sample


def load_real_images(real_dir: str, crop_size: int, image_size: int) -> np.ndarray:
    """uint8 [N, S, S, 3] real images preprocessed like the training data."""
    paths = list_images(real_dir, what="--real_dir")
    if len(paths) < 2:
        raise ValueError(
            f"--real_dir {real_dir!r} has {len(paths)} image(s); FID/KID need at least 2."
        )
    return load_images(paths, crop_size, image_size)


def sample_dcgan(
    generator: keras.Model,
    info: dict,
    test_dir: str,
    sample_H: int = 20,
    sample_W: int = 16,
    num_intermediate: int = 9,
    eval_sample_size: int = 10000,
    batch_size_eval: int = 50,
    seed: int = 0,
    metric=None,
    metrics_note: str = "",
) -> dict:
    """Writes the random grid, the interpolation strip, FID/KID (if ``metric``) and a page.

    Args:
        generator: z -> images in [-1, 1].
        info: from `load_dcgan_generator` (``z_dim``, ``z_distribution``).
        metric: callable on generated uint8 images -> {"fid", "kid", ...} (see
            `facegan_tf.training.gan_metrics.make_image_metrics`), or None.

    Returns:
        The record written to ``<test_dir>/metrics.json``.
    """
    for name, value in (
        ("sample_H", sample_H),
        ("sample_W", sample_W),
        ("batch_size_eval", batch_size_eval),
    ):
        if value < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {name}={value}")
    if num_intermediate < 0:
        raise ValueError(
            f"--num_intermediate must be >= 0. Received: num_intermediate={num_intermediate}"
        )
    os.makedirs(test_dir, exist_ok=True)
    z_dim, distribution = info["z_dim"], info["z_distribution"]
    rng = np.random.default_rng(seed)
    sample = make_sampler(generator, batch_size_eval)
    images = sample(draw_z(rng, sample_H * sample_W, z_dim, distribution))
    scale = max(1, 64 // images.shape[1])
    grid = save_grid(
        os.path.join(test_dir, "sample_image_random.png"), images, sample_H, sample_W, scale
    )
    z_a, z_b = draw_z(rng, 2, z_dim, distribution)
    path = interpolate_latents(z_a, z_b, num_intermediate)
    strip_images = sample(path)
    strip = save_grid(
        os.path.join(test_dir, "sample_image_interpolate.png"), strip_images, 1, len(path), scale
    )
    record = {
        **info,
        "seed": seed,
        "random_grid": grid,
        "interpolation": strip,
    }
    if metric is not None:
        eval_rng = np.random.default_rng([seed, 1])
        fakes = []
        for start in range(0, eval_sample_size, batch_size_eval):
            count = min(batch_size_eval, eval_sample_size - start)
            fakes.append(to_uint8(sample(draw_z(eval_rng, count, z_dim, distribution))))
        values = metric(np.concatenate(fakes))
        record.update({k: float(v) for k, v in values.items()})
        record["num_fake"] = int(eval_sample_size)
    if metrics_note:
        record["note"] = metrics_note
    write_json_atomic(os.path.join(test_dir, "metrics.json"), record)
    rows = [[grid], [strip]]
    captions = [f"random samples ({sample_H} x {sample_W})", "latent interpolation z_a -> z_b"]
    if metric is not None:
        rows.append(
            [
                f"FID {record['fid']:.2f} (sqrt {record['fid_sqrt']:.2f}), KID {record['kid']:.5f} "
                f"± {record['kid_std']:.5f} on {eval_sample_size} samples"
            ]
        )
        captions.append("metrics")
    record["index"] = write_gallery(
        os.path.join(test_dir, "index.html"),
        f"DCGAN test: {info['checkpoint']}",
        ["image"],
        rows,
        captions=captions,
    )
    return record
