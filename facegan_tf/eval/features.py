"""Batched FID feature extraction from image folders and arrays.

Images enter the FID network as uint8 RGB (generated images in [-1, 1] are first quantised
with the PNG rule of ``facegan_tf.data.images.to_uint8``: round((x + 1) * 127.5), clipped),
so that features of saved and in-memory samples agree.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import tensorflow as tf

from facegan_tf.data.images import list_images, read_image, to_uint8
from facegan_tf.eval.frechet import FeatureStatistics
from facegan_tf.eval.inception import FEATURE_DIM, FID_NETWORK_ID
from facegan_tf.training.progress import ProgressBar


def _predict_fn(model):
    """One traced forward pass for any batch and image size (float32 NHWC in [0, 255])."""
    fn = getattr(model, "_fid_predict_fn", None)
    if fn is None:
        fn = tf.function(
            model.call,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        )
        model._fid_predict_fn = fn
    return fn


def _check_batch(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{what} must be RGB images [N, H, W, 3]. "
                         f"Received: images.shape={images.shape}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"{what} must be uint8 or float in [0, 255]. "
                             f"Received: images.dtype={images.dtype}")
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(
                f"{what} must be in [0, 255] (quantise generator outputs in [-1, 1] with "
                "generated_to_uint8 first). Received: "
                f"range=[{images.min():.4g}, {images.max():.4g}]"
            )
    return images


def generated_to_uint8(images) -> np.ndarray:
    """[-1, 1] generator output -> uint8, as when saved to PNG (round((x + 1) * 127.5))."""
    return to_uint8(images)


def extract_features(model, images, batch_size: int = 16, progress: bool = True,
                     label: str = "FID features") -> np.ndarray:
    """float32 [N, 2048] features of an [N, H, W, 3] uint8 / [0, 255] array, in batches."""
    images = _check_batch(images, "images")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive. Received: batch_size={batch_size}")
    predict = _predict_fn(model)
    outputs = []
    with ProgressBar(len(images), label=label, unit="img", enabled=progress) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].astype(np.float32)
            outputs.append(predict(tf.constant(batch)).numpy())
            bar.update(len(batch))
    if not outputs:
        return np.zeros((0, FEATURE_DIM), np.float32)
    return np.concatenate(outputs, axis=0)


def _read_same_size(paths: list[str], expected_shape: tuple[int, ...] | None):
    images = []
    for path in paths:
        image = read_image(path)
        if expected_shape is None:
            expected_shape = image.shape
        if image.shape != expected_shape:
            raise ValueError(
                f"all images of a folder must have the same size; {path!r} is "
                f"{image.shape[1]}x{image.shape[0]}, expected "
                f"{expected_shape[1]}x{expected_shape[0]}. Received: shape={image.shape}"
            )
        images.append(image)
    return np.stack(images), expected_shape


def extract_folder_features(model, folder: str, batch_size: int = 16,
                            progress: bool = True) -> tuple[np.ndarray, str]:
    """(float32 [N, 2048] features, resolution "HxW") of the images directly in ``folder``."""
    paths = list_images(folder)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive. Received: batch_size={batch_size}")
    predict = _predict_fn(model)
    outputs = []
    shape = None
    label = f"FID features {os.path.basename(os.path.normpath(folder))}"
    with ProgressBar(len(paths), label=label, unit="img", enabled=progress) as bar:
        for start in range(0, len(paths), batch_size):
            batch, shape = _read_same_size(paths[start:start + batch_size], shape)
            outputs.append(predict(tf.constant(batch.astype(np.float32))).numpy())
            bar.update(len(batch))
    return np.concatenate(outputs, axis=0), resolution_of(shape)


def resolution_of(shape) -> str:
    """"HxW" of an image shape [H, W, C] or a batch shape [N, H, W, C]."""
    shape = tuple(shape)
    height, width = (shape[1], shape[2]) if len(shape) == 4 else (shape[0], shape[1])
    return f"{height}x{width}"


def folder_resolution(folder: str) -> str:
    """"HxW" of the first image of ``folder`` (``extract_folder_features`` checks the rest)."""
    return resolution_of(read_image(list_images(folder)[0]).shape)


def folder_fingerprint(folder: str) -> str:
    """sha256 over the sorted file names and contents of the images of ``folder``."""
    digest = hashlib.sha256()
    for path in list_images(folder):
        digest.update(os.path.basename(path).encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def folder_statistics(model, folder: str, batch_size: int = 16,
                      progress: bool = True) -> FeatureStatistics:
    """Features and float64 statistics of an image folder, labelled for the cache."""
    features, resolution = extract_folder_features(model, folder, batch_size, progress)
    return FeatureStatistics.from_features(
        features, network=FID_NETWORK_ID, resolution=resolution,
        data_key=f"folder-sha256:{folder_fingerprint(folder)}",
    )
