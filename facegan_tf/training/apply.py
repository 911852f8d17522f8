"""Applying any trained generator to a folder of photos (or sampling a latent model).

Works on a `facegan_tf.export.ServingGenerator` (see `facegan_tf.export.load_serving_generator`
for the model folders it reads) and writes output images, ``apply_manifest.json`` and an
``index.html`` gallery.

Image models (CycleGAN, IPCGAN):

* ``keep_aspect=False`` (the originals' behaviour): every input is resized to
  ``image_size`` x ``image_size`` (CycleGAN: PIL bilinear as its test loader; IPCGAN: bilinear
  with half-pixel centres, rounded to uint8, as its ``test.py``) and the output is written at
  that size.
* ``keep_aspect=True`` (default): the longer side is resized to ``image_size`` and the
  shorter one to the nearest multiple of the architecture's size multiple that keeps the
  aspect ratio (at least one multiple); the output is resized back to the input's own
  height x width.

Outputs: CycleGAN ``<AtoB|BtoA>_<stem>.png``; IPCGAN ``<stem>_group<j>.png`` per target age
group j (per-image statistics, see `facegan_tf.export.ipcgan_per_image`). Latent models
(DCGAN, cGAN) write ``sample_<i>.png`` (cGAN: ``sample_<i>_class<k>.png``) from z drawn with
``seed`` from the training distribution (sualab: U(-1, 1); ours: the run's).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from facegan_tf.data.images import (
    ImageReadError,
    list_images,
    read_image,
    resize_uint8,
    save_image_atomic,
    to_signed_unit,
    to_uint8,
)
from facegan_tf.export import IMAGE_KINDS, ServingGenerator
from facegan_tf.fileio import write_json_atomic
from facegan_tf.training.progress import ProgressBar
from facegan_tf.training.samples import write_gallery

logger = logging.getLogger(__name__)

MANIFEST_FILE = "apply_manifest.json"


def collect_sources(source: str) -> list[str]:
    """One image file, or the sorted images of a folder."""
    if not source:
        raise ValueError("--source is required for image-to-image models (a folder or image).")
    if os.path.isfile(source):
        return [source]
    if not os.path.isdir(source):
        raise FileNotFoundError(
            f"--source {source!r} does not exist: expected an image file or a folder of images."
        )
    return list_images(source, what="--source folder")


def network_size(
    height: int, width: int, image_size: int, multiple: int, keep_aspect: bool
) -> tuple[int, int]:
    """The (height, width) the network runs at for an input of ``height`` x ``width``.

    Square mode: (image_size, image_size). Keep-aspect mode: the longer side becomes
    ``image_size``, the shorter ``max(multiple, multiple * round(short * image_size / long /
    multiple))``.
    """
    if not keep_aspect or height == width:
        return image_size, image_size
    long_side = max(height, width)
    short = min(height, width) * image_size / long_side
    short = max(multiple, multiple * int(round(short / multiple)))
    return (image_size, short) if height >= width else (short, image_size)


def _resize_for_network(pixels, size, kind, keep_aspect):
    if kind == "ipcgan" and not keep_aspect:
        import tensorflow as tf

        if pixels.shape[:2] == tuple(size):
            return pixels
        resized = tf.image.resize(
            tf.constant(pixels, tf.float32), size, method="bilinear", antialias=False
        )
        return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    return resize_uint8(pixels, *size)


def _check_groups(model: ServingGenerator, age_groups) -> list[int]:
    groups = [int(g) for g in age_groups]
    if not groups:
        raise ValueError("--age_groups needs at least one group. Received: age_groups=''")
    bad = [g for g in groups if not 0 <= g < model.age_groups]
    if bad:
        raise ValueError(
            f"--age_groups must lie in 0..{model.age_groups - 1}. Received: age_groups="
            f"{','.join(map(str, groups))}"
        )
    return groups


def apply_to_images(
    model: ServingGenerator,
    paths: list[str],
    output_dir: str,
    image_size: int,
    direction: str = "AtoB",
    age_groups=(1, 2, 3, 4),
    batch_size: int = 4,
    keep_aspect: bool = True,
    progress: bool = True,
) -> dict:
    """Runs an image model on ``paths`` (see the module docstring) in batches of inputs
    that share a network size. Unreadable inputs are skipped, logged and listed.

    Returns:
        ``{"rows": [{"input", "size", "outputs"}], "skipped": [...]}``.
    """
    if model.kind not in IMAGE_KINDS:
        raise ValueError(f"apply_to_images needs an image model. Received: kind={model.kind!r}")
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: batch_size={batch_size}")
    multiple = model.size_multiple
    if image_size % multiple or image_size < multiple:
        raise ValueError(
            f"--image_size must be a positive multiple of {multiple} for this {model.kind} "
            f"generator. Received: image_size={image_size}"
        )
    groups = _check_groups(model, age_groups) if model.kind == "ipcgan" else [None]
    os.makedirs(output_dir, exist_ok=True)
    rows, skipped = [], []
    bar = ProgressBar(len(paths), label=f"apply {model.kind}", unit="img", enabled=progress)
    for start in range(0, len(paths), batch_size):
        loaded = []
        for path in paths[start : start + batch_size]:
            try:
                pixels = read_image(path)
            except (ImageReadError, OSError) as error:
                logger.warning("skipping %s", error)
                skipped.append(path)
                continue
            size = network_size(*pixels.shape[:2], image_size, multiple, keep_aspect)
            loaded.append((path, pixels, size))
        for size in dict.fromkeys(item[2] for item in loaded):
            same = [item for item in loaded if item[2] == size]
            batch = np.stack(
                [_resize_for_network(p, size, model.kind, keep_aspect) for _, p, _ in same]
            )
            signed = to_signed_unit(batch)
            if model.input_channels == 1:
                signed = signed @ np.array([[0.299], [0.587], [0.114]], np.float32)
            outputs = {}
            for group in groups:
                if group is None:
                    outputs[group] = np.asarray(model(signed))
                else:
                    labels = np.full([len(same)], group, np.int32)
                    outputs[group] = np.asarray(model([signed, labels]))
            for index, (path, pixels, _) in enumerate(same):
                stem = os.path.splitext(os.path.basename(path))[0]
                written = []
                for group in groups:
                    image = to_uint8(outputs[group][index])
                    if keep_aspect:
                        image = resize_uint8(image, pixels.shape[0], pixels.shape[1])
                    name = f"{stem}_group{group}.png" if group is not None else (
                        f"{direction}_{stem}.png"
                    )
                    target = os.path.join(output_dir, name)
                    save_image_atomic(target, image)
                    written.append(target)
                rows.append(
                    {"input": path, "size": list(pixels.shape[:2]), "outputs": written}
                )
        bar.update(len(paths[start : start + batch_size]))
    bar.close()
    order = {path: i for i, path in enumerate(paths)}
    rows.sort(key=lambda row: order[row["input"]])
    return {"rows": rows, "skipped": skipped, "groups": [g for g in groups if g is not None]}


def sample_latent(
    model: ServingGenerator,
    output_dir: str,
    num_samples: int = 16,
    class_label: int = 0,
    batch_size: int = 16,
    seed: int = 0,
    z_distribution: str = "normal",
    progress: bool = True,
) -> dict:
    """Writes ``num_samples`` images of a DCGAN (or of class ``class_label`` of a cGAN)."""
    from facegan_tf.training.dcgan_inference import draw_z

    if num_samples < 1:
        raise ValueError(f"--num_samples must be >= 1. Received: num_samples={num_samples}")
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1. Received: batch_size={batch_size}")
    if model.kind == "cgan" and not 0 <= class_label < model.num_classes:
        raise ValueError(
            f"--class_label must lie in 0..{model.num_classes - 1}. Received: "
            f"class_label={class_label}"
        )
    os.makedirs(output_dir, exist_ok=True)
    z = draw_z(np.random.default_rng(seed), num_samples, model.z_dim, z_distribution)
    rows = []
    bar = ProgressBar(num_samples, label=f"sample {model.kind}", unit="img", enabled=progress)
    for start in range(0, num_samples, batch_size):
        chunk = z[start : start + batch_size]
        if model.kind == "cgan":
            images = np.asarray(model([chunk, np.full([len(chunk)], class_label, np.int32)]))
        else:
            images = np.asarray(model(chunk))
        for offset, image in enumerate(images):
            index = start + offset
            suffix = f"_class{class_label}" if model.kind == "cgan" else ""
            target = os.path.join(output_dir, f"sample_{index:04d}{suffix}.png")
            save_image_atomic(target, to_uint8(image))
            rows.append({"input": f"z #{index}", "outputs": [target]})
        bar.update(len(chunk))
    bar.close()
    return {"rows": rows, "skipped": [], "seed": seed, "z_distribution": z_distribution}


def apply_generator(
    model: ServingGenerator,
    info: dict,
    output_dir: str,
    source: str | None = None,
    direction: str = "AtoB",
    age_groups=(1, 2, 3, 4),
    num_samples: int = 16,
    class_label: int = 0,
    batch_size: int = 4,
    keep_aspect: bool = True,
    image_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Runs ``model`` (image or latent kind) and writes outputs, the manifest and the page.

    Returns:
        The manifest (also written to ``<output_dir>/apply_manifest.json``) with ``index``.
    """
    side = int(image_size or info.get("image_size") or model.build_side)
    if model.kind in IMAGE_KINDS:
        paths = collect_sources(source)
        result = apply_to_images(
            model, paths, output_dir, side, direction, age_groups, batch_size, keep_aspect,
            progress,
        )
        if model.kind == "ipcgan":
            columns = ["input"] + [f"group {g}" for g in result["groups"]]
        else:
            columns = ["input", direction]
        table = [[row["input"], *row["outputs"]] for row in result["rows"]]
        captions = [
            f"{os.path.basename(row['input'])} ({row['size'][1]}x{row['size'][0]})"
            for row in result["rows"]
        ]
        options = {"direction": direction, "keep_aspect": keep_aspect, "image_size": side}
        if model.kind == "ipcgan":
            options = {"age_groups": result["groups"], "keep_aspect": keep_aspect,
                       "image_size": side}
    else:
        result = sample_latent(
            model, output_dir, num_samples, class_label, batch_size, seed,
            info.get("z_distribution", "normal"), progress,
        )
        columns = ["sample"]
        table = [row["outputs"] for row in result["rows"]]
        captions = [
            row["input"] + (f", class {class_label}" if model.kind == "cgan" else "")
            for row in result["rows"]
        ]
        options = {"num_samples": num_samples, "seed": seed}
        if model.kind == "cgan":
            options["class_label"] = class_label
    if not result["rows"]:
        raise ValueError(f"No readable image in --source {source!r}; nothing was written.")
    index = write_gallery(
        os.path.join(output_dir, "index.html"),
        f"{model.kind} outputs",
        columns,
        table,
        captions=captions,
        notes={"model": info.get("checkpoint", ""), "kind": model.kind, **options},
    )
    manifest = {
        "kind": model.kind,
        "model": info,
        "options": options,
        "rows": [
            {**row, "outputs": [os.path.relpath(o, output_dir) for o in row["outputs"]]}
            for row in result["rows"]
        ],
        "skipped": result["skipped"],
        "index": os.path.relpath(index, output_dir),
    }
    write_json_atomic(os.path.join(output_dir, MANIFEST_FILE), manifest)
    return {**manifest, "index": index}
