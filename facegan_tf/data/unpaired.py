"""Unpaired two-domain data (``trainA/ trainB/ testA/ testB/``) for CycleGAN.

Epochs follow xhujoy CycleGAN: each epoch shuffles the A and B file lists independently,
pairs the i-th A with the i-th B, and has ``min(n_A, n_B, train_size) // batch_size`` batches.
Each pair is read, resized to ``load_size``, randomly cropped to ``fine_size`` with the same
offsets for A and B, flipped horizontally with one shared decision (p = 0.5), and scaled to
[-1, 1] as u/127.5 - 1.

Everything random is a pure function of (seed, epoch, pair index), so an interrupted run
rebuilds the same epoch and skips the batches it had done.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

import numpy as np
import tensorflow as tf

from facegan_tf.data.images import (
    ImageReadError,
    SkipCounter,
    is_image_file,
    legacy_bytescale,
    list_images,
    probe_image,
    read_image,
    resize_uint8,
    to_signed_unit,
)

logger = logging.getLogger(__name__)

#: Refuse a domain folder in which more than this fraction of files cannot be read.
MAX_UNREADABLE_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class UnpairedFolders:
    """Resolved image lists of a CycleGAN data folder."""

    root: str
    train_a: tuple[str, ...]
    train_b: tuple[str, ...]
    test_a: tuple[str, ...]
    test_b: tuple[str, ...]
    skipped: tuple[str, ...] = ()


def resolve_dataset_dir(dataset_dir: str) -> str:
    """Accepts a real path, or a bare name resolved as ``./datasets/<name>`` like the original."""
    if os.path.isdir(dataset_dir):
        return dataset_dir
    legacy = os.path.join("datasets", dataset_dir)
    if os.path.isdir(legacy):
        return legacy
    raise FileNotFoundError(
        f"Data folder --dataset_dir={dataset_dir!r} does not exist (also tried {legacy!r}); "
        "expected a folder with trainA/ trainB/ testA/ testB/."
    )


def screen_images(paths: list[str], folder: str) -> tuple[list[str], list[str]]:
    """Splits ``paths`` into readable-looking and unreadable files (header check).

    Raises:
        ValueError: more than `MAX_UNREADABLE_FRACTION` of the folder is unreadable.
    """
    good, bad = [], []
    for path in paths:
        reason = probe_image(path)
        if reason is None:
            good.append(path)
        else:
            bad.append(path)
            logger.warning("skipping unreadable image %s: %s", path, reason)
    if not good or len(bad) > MAX_UNREADABLE_FRACTION * len(paths):
        raise ValueError(
            f"{len(bad)} of {len(paths)} files in {folder!r} are not readable images "
            f"(e.g. {bad[0]!r}); expected a folder of JPEG/PNG images."
        )
    return good, bad


def any_image_file(folder: str) -> bool:
    """True if ``folder`` directly holds at least one file with an image extension."""
    return any(
        is_image_file(name) and os.path.isfile(os.path.join(folder, name))
        for name in os.listdir(folder)
    )


def scan_unpaired_folders(dataset_dir: str, need_train: bool = True) -> UnpairedFolders:
    """Lists and screens ``trainA``, ``trainB`` (required when training), ``testA``, ``testB``."""
    root = resolve_dataset_dir(dataset_dir)
    lists: dict[str, tuple[str, ...]] = {}
    skipped: list[str] = []
    for sub in ("trainA", "trainB", "testA", "testB"):
        folder = os.path.join(root, sub)
        required = need_train and sub.startswith("train")
        if not required and (not os.path.isdir(folder) or not any_image_file(folder)):
            lists[sub] = ()  # an absent or empty test folder: samples come from training
            continue
        paths = list_images(folder, what=f"{sub} folder")
        good, bad = screen_images(paths, folder)
        skipped.extend(bad)
        lists[sub] = tuple(good)
    return UnpairedFolders(
        root, lists["trainA"], lists["trainB"], lists["testA"], lists["testB"], tuple(skipped)
    )


def batches_per_epoch(n_a: int, n_b: int, batch_size: int, train_size: int | None = None) -> int:
    """``min(n_A, n_B, train_size) // batch_size`` (the shorter domain sets the epoch)."""
    n = min(n_a, n_b) if train_size is None else min(n_a, n_b, train_size)
    return n // batch_size


def epoch_pairs(
    paths_a, paths_b, seed: int, epoch: int, batch_size: int, train_size: int | None = None
) -> list[tuple[str, str]]:
    """The (A, B) file pairs of one epoch, in order (independent shuffles, index pairing)."""
    rng = np.random.default_rng([seed, epoch, 0])
    order_a = rng.permutation(len(paths_a))
    order_b = rng.permutation(len(paths_b))
    count = batches_per_epoch(len(paths_a), len(paths_b), batch_size, train_size) * batch_size
    return [(paths_a[order_a[i]], paths_b[order_b[i]]) for i in range(count)]


def load_for_model(
    path: str, size: int, legacy_bytescale_mode: bool = False, channels: int = 3
) -> np.ndarray:
    """Reads an image and resizes it to size x size, as float32 in [-1, 1].

    The photo is first converted to ``channels`` (1: ITU-R 601 luma as PIL's "L", 3: RGB;
    see `facegan_tf.data.images.convert_channels`). With ``legacy_bytescale_mode`` it is then
    min-max stretched to 0..255, which is what the original's ``scipy.misc.imresize`` did to
    every float image it resized.
    """
    image = read_image(path, channels)
    if legacy_bytescale_mode:
        image = legacy_bytescale(image)
    return to_signed_unit(resize_uint8(image, size, size))


def augment_pair(
    image_a: np.ndarray,
    image_b: np.ndarray,
    load_size: int,
    fine_size: int,
    rng: np.random.Generator,
    legacy_crop: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Shared random crop and flip of a pair already resized to load_size.

    ``legacy_crop`` reproduces the original's offsets ceil(U(0.01, load - fine)), which are
    never 0 (1..30 at the defaults); otherwise offsets are uniform in 0..load - fine.
    """
    margin = load_size - fine_size
    if margin > 0:
        if legacy_crop:
            top = int(math.ceil(rng.uniform(0.01, margin)))
            left = int(math.ceil(rng.uniform(0.01, margin)))
        else:
            top = int(rng.integers(0, margin + 1))
            left = int(rng.integers(0, margin + 1))
    else:
        top = left = 0
    image_a = image_a[top : top + fine_size, left : left + fine_size]
    image_b = image_b[top : top + fine_size, left : left + fine_size]
    if rng.random() > 0.5:
        image_a, image_b = image_a[:, ::-1], image_b[:, ::-1]
    return np.ascontiguousarray(image_a), np.ascontiguousarray(image_b)


def cyclegan_epoch_dataset(
    folders: UnpairedFolders,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    load_size: int,
    fine_size: int,
    train_size: int | None = None,
    skip_batches: int = 0,
    legacy_bytescale_mode: bool = False,
    legacy_crop: bool = False,
    skipped: SkipCounter | None = None,
    channels_a: int = 3,
    channels_b: int = 3,
) -> tf.data.Dataset:
    """One epoch of ``{"real_a", "real_b"}`` batches [B, fine, fine, C] in [-1, 1].

    Args:
        skip_batches: batches of this epoch already done (resuming); they are not read.
        skipped: collects files that fail to decode; such pairs are dropped, not fatal.
    """
    pairs = epoch_pairs(folders.train_a, folders.train_b, seed, epoch, batch_size, train_size)
    pairs = pairs[skip_batches * batch_size :]
    first_index = skip_batches * batch_size
    skipped = skipped if skipped is not None else SkipCounter()

    def load_pair(index, path_a, path_b):
        path_a, path_b = path_a.decode("utf-8"), path_b.decode("utf-8")
        rng = np.random.default_rng([seed, epoch, 1, int(index)])
        try:
            image_a = load_for_model(path_a, load_size, legacy_bytescale_mode, channels_a)
        except (ImageReadError, OSError) as error:
            skipped.add(path_a)
            logger.warning("skipping %s", error)
            return _empty_pair(fine_size, channels_a, channels_b)
        try:
            image_b = load_for_model(path_b, load_size, legacy_bytescale_mode, channels_b)
        except (ImageReadError, OSError) as error:
            skipped.add(path_b)
            logger.warning("skipping %s", error)
            return _empty_pair(fine_size, channels_a, channels_b)
        image_a, image_b = augment_pair(image_a, image_b, load_size, fine_size, rng, legacy_crop)
        return image_a, image_b, np.bool_(True)

    indices = np.arange(first_index, first_index + len(pairs), dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices(
        (
            indices,
            tf.constant([a for a, _ in pairs] or [""][:0], tf.string),
            tf.constant([b for _, b in pairs] or [""][:0], tf.string),
        )
    )

    def load_fn(index, path_a, path_b):
        image_a, image_b, ok = tf.numpy_function(
            load_pair, [index, path_a, path_b], [tf.float32, tf.float32, tf.bool], stateful=False
        )
        image_a.set_shape([fine_size, fine_size, channels_a])
        image_b.set_shape([fine_size, fine_size, channels_b])
        ok.set_shape([])
        return {"real_a": image_a, "real_b": image_b, "ok": ok}

    dataset = dataset.map(load_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.filter(lambda item: item["ok"])
    dataset = dataset.map(lambda item: {"real_a": item["real_a"], "real_b": item["real_b"]})
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _empty_pair(fine_size: int, channels_a: int, channels_b: int):
    return (
        np.zeros((fine_size, fine_size, channels_a), np.float32),
        np.zeros((fine_size, fine_size, channels_b), np.float32),
        np.bool_(False),
    )
