"""Reading and writing face images robustly.

Every reader returns uint8 RGB arrays [H, W, 3] whatever the file holds: grayscale, palette,
RGBA/LA (composited on black, which is what dropping alpha from premultiplied data gives),
16-bit PNG (scaled to 8 bits), CMYK JPEG, and EXIF-rotated photos (rotated upright).
Unreadable files raise `ImageReadError`, which names the file.

Channel counts: networks take and give 1 (grayscale) or 3 (RGB) channels. `convert_channels`
is the one conversion every tool uses: RGB -> grayscale is the ITU-R BT.601 luma
Y = 0.299 R + 0.587 G + 0.114 B, for pixels exactly as PIL's ``convert("L")`` computes it
(fixed point, rounded); grayscale -> RGB replicates the plane. Writers store [H, W, 1] arrays
as 8-bit grayscale ("L") files and [H, W, 3] arrays as RGB files.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


#: ITU-R BT.601 luma weights of R, G and B (PIL's "L" conversion).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: The same weights in PIL's 16-bit fixed point (they sum to 65536).
_LUMA_FIXED = (19595, 38470, 7471)


class ImageReadError(ValueError):
    """An image file could not be decoded."""


class SkipCounter:
    """Thread-safe record of the files a pipeline skipped because they could not be decoded."""

    def __init__(self):
        self._lock = threading.Lock()
        self.paths: list[str] = []

    def add(self, path: str) -> None:
        with self._lock:
            self.paths.append(path)

    @property
    def count(self) -> int:
        return len(self.paths)


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(name).startswith(".")


def list_images(folder: str, what: str = "image folder") -> list[str]:
    """Sorted paths of the image files directly inside ``folder``.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image file.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} {folder!r} does not exist or is not a folder.")
    paths = sorted(
        os.path.join(folder, name)
        for name in os.listdir(folder)
        if is_image_file(name) and os.path.isfile(os.path.join(folder, name))
    )
    if not paths:
        raise ValueError(
            f"{what} {folder!r} holds no image files (expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)})."
        )
    return paths


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(np.round(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """``images`` [..., C] with C 1 or 3 as [..., channels] (``channels`` 1 or 3).

    3 -> 1: luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601). uint8 pixels give PIL's
    ``convert("L")`` values exactly, (19595 R + 38470 G + 7471 B + 32768) >> 16; float
    images (e.g. in [-1, 1]) get the weighted sum itself. 1 -> 3: the plane replicated.
    Equal counts return ``images`` unchanged.

    Raises:
        ValueError: a channel count other than 1 or 3.
    """
    images = np.asarray(images)
    have = images.shape[-1] if images.ndim >= 3 else None
    if channels not in (1, 3) or have not in (1, 3):
        raise ValueError(
            f"Images must have 1 (grayscale) or 3 (RGB) channels and be converted to 1 or 3. "
            f"Received: shape={images.shape}, channels={channels}"
        )
    if have == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    if images.dtype == np.uint8:
        r, g, b = (images[..., i].astype(np.int32) for i in range(3))
        fixed = r * _LUMA_FIXED[0] + g * _LUMA_FIXED[1] + b * _LUMA_FIXED[2] + 0x8000
        return (fixed >> 16).astype(np.uint8)[..., None]
    weights = np.asarray(LUMA_WEIGHTS, np.float64)[:, None]
    return (np.asarray(images, np.float64) @ weights).astype(images.dtype)


def read_image(path: str, channels: int = 3) -> np.ndarray:
    """Decodes ``path`` into uint8 RGB [H, W, 3] (``channels=1``: luma [H, W, 1], see
    `convert_channels`); see the module docstring."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                image.load()
                rgb = _to_rgb(image)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"Cannot decode image {path!r}: {error}") from error
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"Image {path!r} has an unusable shape {array.shape}.")
    return convert_channels(array, channels)


def probe_image(path: str) -> str | None:
    """Cheap header check; returns None when ``path`` looks decodable, else the reason."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path) as image:
            image.verify()
    except (OSError, ValueError, SyntaxError) as error:
        return str(error) or type(error).__name__
    return None


def to_signed_unit(image_uint8: np.ndarray) -> np.ndarray:
    """u/127.5 - 1, computed in float64 and cast to float32 like the originals' loaders."""
    return (np.asarray(image_uint8, np.float64) / 127.5 - 1.0).astype(np.float32)


def to_uint8(image_signed: np.ndarray) -> np.ndarray:
    """Maps [-1, 1] to uint8 by (x + 1) * 127.5, rounded and clipped."""
    x = (np.asarray(image_signed, np.float64) + 1.0) * 127.5
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def legacy_bytescale(image: np.ndarray) -> np.ndarray:
    """The min-max stretch that SciPy's removed ``imresize``/``imsave`` applied to float input.

    SciPy's ``bytescale`` with cmin = min and cmax = max over all channels jointly:
    ``uint8(clip((v - min) * (255 / (max - min)), 0, 255) + 0.5)``, i.e. halves round up;
    a constant image (max = min) has the span taken as 1 and becomes all 0. The xhujoy
    CycleGAN's loader and image writer both went through it (on float64 data), so every
    image it read or wrote was contrast-stretched to the full 0..255 range.
    """
    x = np.asarray(image, np.float64)
    low, high = float(x.min()), float(x.max())
    span = (high - low) or 1.0
    scaled = (x - low) * (255.0 / span)
    return (np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)


def save_image(path: str, image: np.ndarray) -> None:
    """Writes a uint8 [H, W, 3] (RGB file) or [H, W, 1] / [H, W] array (8-bit grayscale
    file), or such a float array in [-1, 1], to ``path``.

    The format follows the file extension; JPEG is written at quality 95.

    Raises:
        ValueError: any other shape.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = to_uint8(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(
            f"An image to write must be [H, W], [H, W, 1] or [H, W, 3]. Received: "
            f"shape={np.shape(image)} for {path!r}"
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {"quality": 95} if path.lower().endswith((".jpg", ".jpeg")) else {}
    Image.fromarray(array).save(path, **options)


def save_image_atomic(path: str, image: np.ndarray) -> None:
    """`save_image` through a temporary file in the same folder and a rename, so ``path``
    is either absent, its previous content or the complete new image, never half-written."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        save_image(temporary, image)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def resize_uint8(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a uint8 RGB [H, W, 3] or grayscale [H, W, 1] / [H, W] image with
    PIL (antialiased when shrinking); the result has the input's layout."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    plane = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    resized = np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR), np.uint8)
    return resized.reshape(height, width, *image.shape[2:])
