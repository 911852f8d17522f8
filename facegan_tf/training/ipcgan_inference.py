"""Applying a trained IPCGAN generator: loading it (ours or legacy) and aging a folder.

The original's ``test.py`` (Wang et al., CVPR 2018, authors' code): every test image is
resized to 128 x 128 (OpenCV bilinear), mean-subtracted, batched with the 31 faces of
``images/train`` and run through the generator with **batch statistics** for target groups
1..4; only row 0 is kept. It writes the resized input under its own file name and the
outputs as ``<name>_<j>.jpg`` into the save folder.

Modes here:

* ``faithful``: exactly that padding batch (``batch_size - 1`` padding faces, sorted by
  name, from ``--train_dir``), batch statistics, no change to the model's statistics.
* ``clean``: one image at a time, moving statistics in ``bn1``..``bn5``; the residual units
  still normalise with batch statistics over the single image (as in every mode of the
  original). Outputs no longer depend on a padding folder, but differ from the original's.
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from facegan_tf.data.images import (
    is_image_file,
    legacy_bytescale,
    read_image,
    save_image_atomic,
    to_uint8,
)
from facegan_tf.data.ipcgan_lists import condition_batch
from facegan_tf.data.ipcgan_results import aged_name
from facegan_tf.migrate.tf1 import STATE_FILE
from facegan_tf.networks.ipcgan import MEAN_RGB, BatchNorm
from facegan_tf.training.checkpointing import (
    read_run_info,
    restore_models,
    restore_trackables,
    trackable_variables,
)
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import write_gallery

logger = logging.getLogger(__name__)

MODES = ("faithful", "clean")
#: The original writes groups 1..4 (21-30, 31-40, 41-50, 50+) for young inputs.
DEFAULT_TARGET_GROUPS = (1, 2, 3, 4)


def _legacy_folder(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, STATE_FILE)) or any(
        name.endswith(".index") for name in os.listdir(folder)
    )


#: `BatchNorm`'s zero-debias state, absent from checkpoints written before it existed.
DEBIAS_WEIGHTS = (
    "moving_mean_biased", "moving_mean_local_step", "moving_variance_biased",
    "moving_variance_local_step",
)
#: Update count given to averages restored without debias state: 0.9 ** n underflows, so
#: the zero-debiased EMA continues them exactly as the plain EMA they were made with.
CONTINUED_LOCAL_STEP = 1000.0


def lacks_debias_state(path: str) -> bool:
    """True for an IPCGAN checkpoint of ours written before `BatchNorm` kept its debias state."""
    try:
        names = [name for name, _ in tf.train.list_variables(path)]
    except (tf.errors.OpError, ValueError):
        return False  # let the regular restore report the unreadable checkpoint
    return not any("moving_mean_biased" in name for name in names)


def without_debias_state(model: keras.Model) -> dict:
    """`trackable_variables` of ``model`` without the debias state (older checkpoints)."""
    return {
        path: variable for path, variable in trackable_variables(model).items()
        if not path.endswith(DEBIAS_WEIGHTS)
    }


def continue_plain_averages(models: dict) -> None:
    """Debias state that continues restored moving averages: biased = moving, n = 1000."""
    for model in models.values():
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, BatchNorm):
                layer.moving_mean_biased.assign(layer.moving_mean)
                layer.moving_variance_biased.assign(layer.moving_variance)
                layer.moving_mean_local_step.assign(CONTINUED_LOCAL_STEP)
                layer.moving_variance_local_step.assign(CONTINUED_LOCAL_STEP)


def restore_ipcgan_models(path: str, models: dict) -> None:
    """`restore_models` for G and D, also from checkpoints without the debias state."""
    if not lacks_debias_state(path):
        restore_models(path, **models)
        return
    restore_trackables(
        path, **{name: without_debias_state(model) for name, model in models.items()}
    )
    continue_plain_averages(models)


def load_ipcgan_models(checkpoint_dir: str, image_size: int = 128) -> tuple[dict, dict]:
    """G and D from a run folder of ours (kind ``ipcgan``) or a legacy ``acgan.model-N``
    folder/prefix. Nothing runs with random weights: a folder without a loadable IPCGAN
    checkpoint raises.

    Returns:
        (models, info) with ``info["source"]`` ``"facegan_tf"`` or ``"ipcgan_tf1"``.
    """
    from facegan_tf.training.checkpointing import CheckpointKindError

    if os.path.isdir(checkpoint_dir):
        info = read_run_info(checkpoint_dir)
        if info is not None:
            if info["kind"] != "ipcgan":
                raise CheckpointKindError(
                    f"--checkpoint_dir {checkpoint_dir!r} holds a {info['kind']!r} model, "
                    "expected an 'ipcgan' generator."
                )
            from facegan_tf.migrate.ipcgan import build_ipcgan_models as build_from_widths

            config = info["config"]
            widths = {
                "g_base_filters": config["g_base_filters"], "num_blocks": config["num_blocks"],
                "age_groups": config["age_groups"], "d_base_filters": config["d_base_filters"],
                "d_output_channels": config["d_output_channels"],
            }
            models = build_from_widths(widths, config.get("image_size", image_size))
            latest = tf.train.latest_checkpoint(checkpoint_dir)
            if latest is None:
                raise FileNotFoundError(f"{checkpoint_dir!r} has a run file but no checkpoint.")
            restore_ipcgan_models(latest, models)
            return models, {"source": "facegan_tf", "checkpoint": latest, **widths}
        if not _legacy_folder(checkpoint_dir):
            raise FileNotFoundError(
                f"No checkpoint in --checkpoint_dir {checkpoint_dir!r}: expected a facegan_tf "
                "run folder or an original IPCGAN folder with acgan.model-N.index and a "
                "'checkpoint' state file."
            )
    from facegan_tf.migrate import load_legacy_with_info

    models, info = load_legacy_with_info("ipcgan", checkpoint_dir, image_size=image_size)
    details = {k: v for k, v in info.items() if k not in ("loaded", "ignored")}
    return models, {"source": "ipcgan_tf1", "checkpoint": info["prefix"], **details}


def load_test_image(path: str, image_size: int = 128) -> np.ndarray:
    """The original's test loader: RGB, bilinear resize (half-pixel centres, like OpenCV
    INTER_LINEAR) to ``image_size``, rounded to uint8, minus [104, 117, 124]. Reads non-ASCII
    paths (PIL) and odd formats."""
    pixels = read_image(path)
    if pixels.shape[:2] != (image_size, image_size):
        resized = tf.image.resize(
            tf.constant(pixels, tf.float32), (image_size, image_size), method="bilinear",
            antialias=False,
        )
        pixels = np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    return pixels.astype(np.float32) - np.asarray(MEAN_RGB, np.float32)


def list_folder_images(folder: str, what: str) -> list[str]:
    """Sorted image files of ``folder`` (non-image files skipped)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} {folder!r} does not exist or is not a folder.")
    return sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if is_image_file(name) and os.path.isfile(os.path.join(folder, name))
    )


def age_folder(
    generator: keras.Model,
    test_paths: list[str],
    save_dir: str,
    mode: str = "faithful",
    padding_paths: list[str] | None = None,
    batch_size: int = 32,
    target_groups: tuple = DEFAULT_TARGET_GROUPS,
    image_size: int = 128,
    legacy_stretch: bool = False,
    progress: bool = True,
) -> dict:
    """Writes, per test image, its resized copy ``<save_dir>/<name>`` and ``<name>_<j>.jpg``
    for every target group j; see the module docstring for the modes.

    Every input and padding image is decoded before the first file is written, so a bad
    input stops the run with nothing written.

    Args:
        legacy_stretch: min-max stretch each output like the original's ``scipy.misc.imsave``;
            default: plain (x + 1) * 127.5.

    Returns:
        ``{"written": [...], "index": path}``.
    """
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {MODES}. Received: mode={mode!r}")
    groups = generator.age_groups
    for group in target_groups:
        if not 0 <= int(group) < groups:
            raise ValueError(
                f"Target age groups must lie in 0..{groups - 1}. Received: target_group={group}"
            )
    if not test_paths:
        raise ValueError("No test images to age (the --source folder holds no image files).")
    images = [load_test_image(p, image_size) for p in test_paths]
    padding = None
    if mode == "faithful":
        needed = batch_size - 1
        padding_paths = list(padding_paths or [])
        if len(padding_paths) < needed:
            raise ValueError(
                f"Faithful mode pads each test image with --batch_size - 1 = {needed} faces from "
                f"--train_dir; it holds {len(padding_paths)}. Add faces, lower --batch_size "
                "(outputs then differ from the original), or use --mode=clean."
            )
        padding = np.stack([load_test_image(p, image_size) for p in padding_paths[:needed]])
    os.makedirs(save_dir, exist_ok=True)

    @tf.function(reduce_retracing=True)
    def run(batch, condition, batch_statistics):
        return generator(
            [batch, condition], training=batch_statistics, update_statistics=False
        )[0]

    written, rows, captions = [], [], []
    bar = ProgressBar(len(test_paths), label=f"test ({mode})", unit="img", enabled=progress)
    for path, image in zip(test_paths, images):
        name = os.path.basename(path)
        batch = image[None] if padding is None else np.concatenate([image[None], padding])
        copy = os.path.join(save_dir, name)
        pixels = np.clip(np.round(image + np.asarray(MEAN_RGB, np.float32)), 0, 255)
        save_image_atomic(copy, pixels.astype(np.uint8))
        row = [copy]
        for group in target_groups:
            condition = condition_batch(np.full([len(batch)], int(group)), groups, image_size)
            output = run(tf.constant(batch), condition, mode == "faithful").numpy()
            pixels = legacy_bytescale((output + 1.0) / 2.0) if legacy_stretch else to_uint8(output)
            target = os.path.join(save_dir, aged_name(name, group))
            save_image_atomic(target, pixels)
            written.append(target)
            row.append(target)
        written.append(copy)
        rows.append(row)
        captions.append(name)
        bar.update(1)
    bar.close()
    index = write_gallery(
        os.path.join(save_dir, "index.html"), f"IPCGAN test results ({mode} mode)",
        ["input"] + [f"group {g}" for g in target_groups], rows, captions=captions,
    )
    return {"written": written, "index": index}

