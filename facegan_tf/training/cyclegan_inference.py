"""Applying trained CycleGAN generators: loading them (ours or legacy) and translating folders."""

from __future__ import annotations

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from facegan_tf.data.images import (
    ImageReadError,
    legacy_bytescale,
    list_images,
    save_image,
    to_uint8,
)
from facegan_tf.data.unpaired import load_for_model
from facegan_tf.fileio import write_json_atomic
from facegan_tf.migrate.tf1 import STATE_FILE
from facegan_tf.training.checkpointing import check_run_kind, read_run_info, restore_models
from facegan_tf.training.cyclegan import KIND, CycleGANConfig, build_cyclegan_models
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import write_gallery

logger = logging.getLogger(__name__)

DIRECTIONS = ("AtoB", "BtoA")


def find_legacy_folder(checkpoint_dir: str, dataset_name: str | None, fine_size: int) -> str | None:
    """Where an xhujoy checkpoint lives: ``checkpoint_dir`` itself, its
    ``<dataset_name>_<fine_size>`` sub-folder (the original's layout), or its only sub-folder
    holding a checkpoint."""
    if os.path.isfile(os.path.join(checkpoint_dir, STATE_FILE)) or any(
        name.endswith(".index") for name in os.listdir(checkpoint_dir)
    ):
        return checkpoint_dir
    candidates = []
    if dataset_name:
        candidates.append(
            os.path.join(
                checkpoint_dir, f"{os.path.basename(dataset_name.rstrip('/'))}_{fine_size}"
            )
        )
    subfolders = [
        os.path.join(checkpoint_dir, name)
        for name in sorted(os.listdir(checkpoint_dir))
        if os.path.isfile(os.path.join(checkpoint_dir, name, STATE_FILE))
    ]
    if len(subfolders) == 1:
        candidates.append(subfolders[0])
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, STATE_FILE)):
            return candidate
    return None


def load_cyclegan_models(
    checkpoint_dir: str, dataset_name: str | None = None, fine_size: int = 256
) -> tuple[dict[str, keras.Model], dict]:
    """Loads generators and discriminators from a checkpoint folder of ours or a legacy one.

    Our folders are recognised by their run file; anything else is tried as an xhujoy TF1
    checkpoint. Unlike the original, nothing runs with random weights: a folder from which
    no checkpoint loads raises.

    Returns:
        (models, info): the four models and ``{"source": "facegan_tf"|"xhujoy_tf1", ...}``.
    """
    if not os.path.isdir(checkpoint_dir):
        raise FileNotFoundError(f"--checkpoint_dir {checkpoint_dir!r} does not exist.")
    info = read_run_info(checkpoint_dir)
    if info is not None:
        check_run_kind(checkpoint_dir, KIND)
        config = CycleGANConfig(
            **{k: v for k, v in info["config"].items() if k in CycleGANConfig.__dataclass_fields__}
        )
        models = build_cyclegan_models(config)
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        if latest is None:
            raise FileNotFoundError(f"{checkpoint_dir!r} has a run file but no checkpoint.")
        restore_models(latest, **models)
        return models, {
            "source": "facegan_tf",
            "checkpoint": latest,
            "fine_size": config.fine_size,
            **config.architecture(),
        }
    legacy = find_legacy_folder(checkpoint_dir, dataset_name, fine_size)
    if legacy is None:
        raise FileNotFoundError(
            f"No checkpoint found in --checkpoint_dir {checkpoint_dir!r}: expected a facegan_tf "
            f"run folder or an xhujoy TF1 folder (with a 'checkpoint' state file, possibly in a "
            f"'<dataset>_<fine_size>' sub-folder)."
        )
    from facegan_tf.migrate import load_legacy_with_info

    models, legacy_info = load_legacy_with_info("cyclegan_xhujoy", legacy)
    details = {k: v for k, v in legacy_info.items() if k not in ("loaded", "ignored")}
    return models, {"source": "xhujoy_tf1", "checkpoint": legacy_info["prefix"], **details}


def output_name(direction: str, input_path: str, output_format: str = "keep") -> str:
    """``<AtoB|BtoA>_<input file name>`` as the original; ``png`` changes the extension."""
    base = os.path.basename(input_path)
    if output_format == "png":
        base = os.path.splitext(base)[0] + ".png"
    return f"{direction}_{base}"


def translate_folder(
    generator: keras.Model,
    paths: list[str],
    test_dir: str,
    direction: str,
    fine_size: int,
    input_channels: int = 3,
    legacy_bytescale_mode: bool = False,
    output_format: str = "keep",
    batch_size: int = 4,
    progress: bool = True,
) -> dict:
    """Translates every image in ``paths`` and writes outputs, a manifest and ``index.html``.

    Each input is resized to fine_size x fine_size (as the original's test), run through
    ``generator`` in inference mode, and written as ``<test_dir>/<direction>_<name>``. With
    ``legacy_bytescale_mode`` inputs and outputs are min-max stretched as the original's
    SciPy I/O did. Unreadable inputs are skipped and counted; when none is readable nothing
    is written (no folder, no index) and ValueError names the inputs.

    Returns:
        ``{"written": [...], "skipped": [...], "index": path}``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"--which_direction must be AtoB or BtoA. Received: {direction!r}")
    written, skipped, rows = [], [], []
    infer = tf.function(lambda x: generator(x, training=False), reduce_retracing=True)
    bar = ProgressBar(len(paths), label=f"test {direction}", unit="img", enabled=progress)
    for start in range(0, len(paths), batch_size):
        chunk, images = [], []
        for path in paths[start : start + batch_size]:
            try:
                images.append(
                    load_for_model(path, fine_size, legacy_bytescale_mode, input_channels)
                )
                chunk.append(path)
            except (ImageReadError, OSError) as error:
                logger.warning("skipping %s", error)
                skipped.append(path)
        if chunk:
            outputs = infer(tf.constant(np.stack(images))).numpy()
            for path, output in zip(chunk, outputs):
                if legacy_bytescale_mode:
                    pixels = legacy_bytescale((output + 1.0) / 2.0)
                else:
                    pixels = to_uint8(output)
                target = os.path.join(test_dir, output_name(direction, path, output_format))
                os.makedirs(test_dir, exist_ok=True)
                save_image(target, pixels)
                written.append(target)
                rows.append((path, target))
        bar.update(len(paths[start : start + batch_size]))
    bar.close()
    if not written:
        shown = ", ".join(repr(p) for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        raise ValueError(
            f"No readable image among {len(skipped)} input(s) ({shown}); nothing was written."
        )
    manifest = os.path.join(test_dir, f"{direction}_manifest.json")
    write_json_atomic(
        manifest,
        {
            "direction": direction,
            "rows": [[os.path.abspath(i), os.path.abspath(o)] for i, o in rows],
        },
    )
    index = write_index(test_dir)
    return {"written": written, "skipped": skipped, "index": index}


def write_index(test_dir: str) -> str:
    """``<test_dir>/index.html``: name | input | output for every direction run in the folder."""
    table, captions = [], []
    for direction in DIRECTIONS:
        manifest = os.path.join(test_dir, f"{direction}_manifest.json")
        if not os.path.isfile(manifest):
            continue
        with open(manifest, encoding="utf-8") as f:
            for input_path, output_path in json.load(f)["rows"]:
                captions.append(f"{direction}: {os.path.basename(input_path)}")
                table.append([input_path, output_path])
    return write_gallery(
        os.path.join(test_dir, "index.html"),
        "CycleGAN test results",
        ["input", "output"],
        table,
        captions=captions,
    )


def check_test_size(fine_size: int, use_resnet: bool = True) -> None:
    """The sizes the generators run at: the ResNet generator needs a multiple of 4 (>= 8), the
    U-Net (eight stride-2 levels) a multiple of 256."""
    if use_resnet and (fine_size % 4 or fine_size < 8):
        raise ValueError(
            "The ResNet generator needs --fine_size to be a multiple of 4 and >= 8. "
            f"Received: fine_size={fine_size}"
        )
    if not use_resnet and fine_size % 256:
        raise ValueError(
            "The U-Net generator needs --fine_size to be a multiple of 256. "
            f"Received: fine_size={fine_size}"
        )


def collect_test_inputs(source: str | None, dataset_dir: str | None, direction: str) -> list[str]:
    """``--source`` (a folder or one image) or ``<dataset_dir>/testA`` (AtoB) / ``testB`` (BtoA)."""
    if source:
        if os.path.isfile(source):
            from facegan_tf.data.images import read_image

            try:
                read_image(source)
            except ImageReadError as error:
                raise ValueError(f"--source {error}; nothing was written.") from None
            return [source]
        if not os.path.exists(source):
            raise FileNotFoundError(
                f"--source {source!r} does not exist: expected an image file or a folder of "
                "images."
            )
        return list_images(source, what="--source folder")
    if not dataset_dir:
        raise ValueError("Give --source (a folder of images) or --dataset_dir (uses testA/testB).")
    from facegan_tf.data.unpaired import resolve_dataset_dir

    folder = os.path.join(
        resolve_dataset_dir(dataset_dir), "testA" if direction == "AtoB" else "testB"
    )
    return list_images(folder, what=f"test folder for --which_direction={direction}")


def translate(
    checkpoint_dir,
    source,
    dataset_dir,
    direction,
    test_dir,
    fine_size=None,
    legacy_bytescale_mode=False,
    output_format="keep",
    progress=True,
) -> dict:
    """Loads the generator for ``direction`` from ``checkpoint_dir`` and translates ``source``
    (or the test folder of ``dataset_dir``) into ``test_dir``.

    ``fine_size=None`` uses the run's own ``fine_size`` (256, the original's default, for a
    legacy checkpoint). A size the generator cannot run at raises ValueError before anything
    is written.
    """
    paths = collect_test_inputs(source, dataset_dir, direction)
    models, info = load_cyclegan_models(checkpoint_dir, dataset_dir, fine_size or 256)
    if fine_size is None:
        fine_size = int(info.get("fine_size") or 256)
    check_test_size(fine_size, info.get("use_resnet", True))
    key = "generator_a2b" if direction == "AtoB" else "generator_b2a"
    input_channels = info.get("input_nc", 3) if direction == "AtoB" else info.get("output_nc", 3)
    result = translate_folder(
        models[key],
        paths,
        test_dir,
        direction,
        fine_size,
        input_channels,
        legacy_bytescale_mode,
        output_format,
        progress=progress,
    )
    result["checkpoint"] = info["checkpoint"]
    result["checkpoint_source"] = info["source"]
    return result
