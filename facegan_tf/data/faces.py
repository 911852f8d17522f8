"""Face image sets for DCGAN and conditional GANs: one folder, or one sub-folder per class.

Preprocessing (sualab ``read_data``/``center_crop``): centre crop ``crop_size`` x
``crop_size`` at offset round((side - crop) / 2) (16 for 128 -> 96), bilinear resize to
``image_size`` without antialiasing and with half-pixel centres (OpenCV ``INTER_LINEAR``), RGB.
``crop_size=0`` skips the crop (the mask project resizes the whole image). The result is kept
in memory as uint8 [N, S, S, 3] (sualab kept float32; rounding to uint8 changes a pixel by at
most 0.5 / 127.5 in [-1, 1]). Batches are dicts ``{"image": float32 in [-1, 1], "label":
int32}``.

Each epoch visits a permutation drawn from (seed, epoch) and drops the incomplete last batch,
so every step sees a full global batch and a resumed run can skip exactly the batches it has
already trained on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from facegan_tf.data.images import ImageReadError, list_images, read_image

logger = logging.getLogger(__name__)

_CHUNK = 256

#: Refuse a data set of which more than this fraction of files cannot be decoded.
MAX_UNREADABLE_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class FaceSet:
    """Preprocessed images in memory with optional class labels.

    Attributes:
        images: uint8 [N, S, S, 3].
        labels: int32 [N] (all zeros for an unlabelled set).
        class_names: one name per label index (``("faces",)`` when unlabelled).
        source: where the images came from (folder or ``"demo:lfw"``).
        skipped: files that could not be decoded and were left out.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    skipped: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_images(self, label: int) -> np.ndarray:
        return self.images[self.labels == label]


def center_crop_offset(side: int, crop: int) -> int:
    """sualab's crop offset, round((side - crop) / 2)."""
    return int(round((side - crop) / 2.0))


def preprocess_batch(images: np.ndarray, crop_size: int, image_size: int) -> np.ndarray:
    """Centre crop, then bilinear resize (no antialias): uint8 [N, H, W, 3] -> [N, S, S, 3]."""
    images = np.asarray(images)
    height, width = images.shape[1:3]
    if crop_size:
        top = center_crop_offset(height, crop_size)
        left = center_crop_offset(width, crop_size)
        images = images[:, top : top + crop_size, left : left + crop_size]
    if images.shape[1] == image_size and images.shape[2] == image_size:
        return images.astype(np.uint8)
    resized = tf.image.resize(
        tf.constant(images, tf.float32),
        (image_size, image_size),
        method="bilinear",
        antialias=False,
    )
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def _check_crop(crop_size: int, height: int, width: int, path: str) -> None:
    if crop_size and (crop_size > height or crop_size > width):
        raise ValueError(
            f"crop_size={crop_size} is larger than image {path!r} ({width}x{height}); "
            "expected a crop no larger than the images (96 for 128x128 FFHQ thumbnails, or 0 "
            "for no crop)."
        )


def load_images(
    paths: list[str],
    crop_size: int,
    image_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Reads, crops and resizes the readable files of ``paths`` into uint8 [N, S, S, 3];
    see `load_images_skipping`."""
    return load_images_skipping(paths, crop_size, image_size, on_progress)[0]


def load_images_skipping(
    paths: list[str],
    crop_size: int,
    image_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reads, crops and resizes ``paths``; returns (images uint8 [N, S, S, 3], kept [len(paths)]
    bool, skipped paths).

    Every image must have the size of the first readable one (the fixed crop assumes it);
    modes are converted to RGB (grayscale replicated, alpha composited on black;
    `read_image`). A file that cannot be decoded is skipped with a warning and counted; a set
    of which more than `MAX_UNREADABLE_FRACTION` is unreadable is refused. ``on_progress(n)``
    is called after every chunk of ``n`` files.

    Raises:
        ValueError: an image of another size, a crop larger than the images, or a mostly
            unreadable set; the message names a file.
    """
    if not paths:
        raise ValueError("No image paths given.")
    output = np.zeros((len(paths), image_size, image_size, 3), np.uint8)
    kept = np.zeros(len(paths), bool)
    skipped: list[str] = []
    reference = None
    count = 0
    for start in range(0, len(paths), _CHUNK):
        chunk = []
        for index, path in enumerate(paths[start : start + _CHUNK], start):
            try:
                image = read_image(path)
            except ImageReadError as error:
                skipped.append(path)
                logger.warning("skipping unreadable image: %s", error)
                continue
            if reference is None:
                reference = (image.shape[:2], path)
                _check_crop(crop_size, image.shape[0], image.shape[1], path)
            elif image.shape[:2] != reference[0]:
                (ref_h, ref_w), ref_path = reference
                raise ValueError(
                    f"Image {path!r} is {image.shape[1]}x{image.shape[0]} but {ref_path!r} is "
                    f"{ref_w}x{ref_h}; every image of a data set must have the same size "
                    "(resize them first, e.g. to the 128x128 of FFHQ thumbnails)."
                )
            chunk.append(image)
            kept[index] = True
        if len(skipped) > MAX_UNREADABLE_FRACTION * len(paths):
            raise ValueError(
                f"{len(skipped)} of the first {min(start + _CHUNK, len(paths))} "
                f"files are not readable images (e.g. {skipped[0]!r}); expected JPEG/PNG "
                "images. Refusing a mostly unreadable data set."
            )
        if chunk:
            output[count : count + len(chunk)] = preprocess_batch(
                np.stack(chunk), crop_size, image_size
            )
            count += len(chunk)
        if on_progress is not None:
            on_progress(len(paths[start : start + _CHUNK]))
    if skipped:
        logger.warning(
            "%d of %d image files could not be decoded and were skipped (first: %s)",
            len(skipped), len(paths), skipped[0],
        )
    return output[:count], kept, tuple(skipped)


def load_face_folder(
    folder: str,
    crop_size: int = 96,
    image_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> FaceSet:
    """All images directly inside ``folder`` (e.g. FFHQ ``thumbnails128x128``), unlabelled."""
    paths = list_images(folder, what="--data_dir")
    images, _, skipped = load_images_skipping(paths, crop_size, image_size, on_progress)
    return FaceSet(
        images, np.zeros(len(images), np.int32), ("faces",), os.path.abspath(folder), skipped
    )


def scan_class_folders(root: str) -> tuple[tuple[str, ...], list[list[str]]]:
    """Class names (sub-folders sorted by name) and the image paths of each.

    The label of a class is its index in name order: ``with_mask`` 0, ``without_mask`` 1,
    like the mask project's ``ImageFolder``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: fewer than two class sub-folders, or a class folder without images.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--data_dir {root!r} does not exist or is not a folder.")
    names = sorted(
        entry
        for entry in os.listdir(root)
        if not entry.startswith(".") and os.path.isdir(os.path.join(root, entry))
    )
    if len(names) < 2:
        raise ValueError(
            f"--data_dir {root!r} has {len(names)} class sub-folder(s) {names}; a conditional "
            "GAN needs at least two (one sub-folder of images per class, e.g. with_mask/ and "
            "without_mask/)."
        )
    paths = []
    for name in names:
        folder = os.path.join(root, name)
        try:
            paths.append(list_images(folder, what="class folder"))
        except ValueError as error:
            raise ValueError(
                f"Class folder {folder!r} holds no image files; every class needs images "
                "(remove the folder or add images)."
            ) from error
    return tuple(names), paths


def load_class_folders(
    root: str,
    crop_size: int = 0,
    image_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
) -> FaceSet:
    """A labelled set from ``root/<class>/*.png``; see `scan_class_folders`."""
    names, per_class = scan_class_folders(root)
    flat = [p for paths in per_class for p in paths]
    labels = np.concatenate(
        [np.full(len(paths), index, np.int32) for index, paths in enumerate(per_class)]
    )
    images, kept, skipped = load_images_skipping(flat, crop_size, image_size, on_progress)
    return FaceSet(images, labels[kept], names, os.path.abspath(root), skipped)


def demo_face_set(image_size: int = 32, labelled: bool = False) -> FaceSet:
    """The embedded 100 LFW faces (25 x 25 gray as RGB) resized to ``image_size``.

    ``labelled=True`` adds the male/female pseudo-labels (classes ``("female", "male")``).
    """
    from facegan_tf.data.demo import lfw_gender_labels, load_lfw_faces

    images = preprocess_batch(load_lfw_faces(), 0, image_size)
    if not labelled:
        return FaceSet(images, np.zeros(len(images), np.int32), ("faces",), "demo:lfw")
    names = ("female", "male")
    labels = np.array([names.index(g) for g in lfw_gender_labels()], np.int32)
    return FaceSet(images, labels, names, "demo:lfw_gender")


def steps_per_epoch(num_images: int, global_batch_size: int) -> int:
    return num_images // global_batch_size


def epoch_permutation(num_images: int, seed: int, epoch: int) -> np.ndarray:
    """The visiting order of an epoch, a function of (seed, epoch) only."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_images)


def epoch_dataset(
    faces: FaceSet, global_batch_size: int, seed: int, epoch: int, skip_batches: int = 0
) -> tf.data.Dataset:
    """Full global batches of one epoch, starting after ``skip_batches`` batches.

    Raises:
        ValueError: fewer images than one global batch.
    """
    count = len(faces.images)
    steps = steps_per_epoch(count, global_batch_size)
    if steps < 1:
        raise ValueError(
            f"The data set {faces.source!r} has {count} images, fewer than one global batch of "
            f"{global_batch_size}; lower --batch_size."
        )
    order = epoch_permutation(count, seed, epoch)[: steps * global_batch_size]
    order = order.reshape(steps, global_batch_size)[skip_batches:]
    images, labels = faces.images, faces.labels

    def batches():
        for indices in order:
            yield {"image": images[indices], "label": labels[indices]}

    size = images.shape[1]
    signature = {
        "image": tf.TensorSpec((global_batch_size, size, size, 3), tf.uint8),
        "label": tf.TensorSpec((global_batch_size,), tf.int32),
    }
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    dataset = dataset.map(
        lambda b: {"image": tf.cast(b["image"], tf.float32) / 127.5 - 1.0, "label": b["label"]}
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(2)
