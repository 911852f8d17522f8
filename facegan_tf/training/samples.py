"""Images a person can look at: sample grids (PNG) and HTML galleries."""

from __future__ import annotations

import html
import os

import numpy as np

from facegan_tf.data.images import save_image, to_uint8
from facegan_tf.fileio import atomic_write


def make_grid(images: np.ndarray, rows: int, cols: int, padding: int = 2) -> np.ndarray:
    """Tiles [N, H, W, C] images (float in [-1, 1] or uint8) row-major into one uint8 image.

    Missing cells (N < rows * cols) stay black; extra images are dropped.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape [N, H, W, C]. Received: shape={images.shape}")
    if images.dtype != np.uint8:
        images = to_uint8(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    _, height, width, channels = images.shape
    grid = np.zeros(
        (rows * height + (rows + 1) * padding, cols * width + (cols + 1) * padding, channels),
        np.uint8,
    )
    for index, image in enumerate(images[: rows * cols]):
        r, c = divmod(index, cols)
        top = padding + r * (height + padding)
        left = padding + c * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_grid(path: str, images: np.ndarray, rows: int, cols: int, scale: int = 1) -> str:
    """Saves `make_grid` to ``path``; ``scale`` > 1 enlarges it (nearest) for tiny images."""
    grid = make_grid(images, rows, cols)
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    save_image(path, grid)
    return path


def write_gallery(
    path: str,
    title: str,
    columns: list[str],
    rows: list[list[str]],
    captions: list[str] | None = None,
) -> str:
    """Writes a valid HTML page with one table row per entry.

    Args:
        path: the HTML file; image links are made relative to its folder.
        title: page title and heading.
        columns: header of each column.
        rows: per row, one cell per column: an image path (shown as an image) or text.
        captions: optional first-column text per row.
    """
    base = os.path.dirname(os.path.abspath(path))

    def cell(value: str) -> str:
        if isinstance(value, str) and os.path.splitext(value)[1].lower() in (
            ".png",
            ".jpg",
            ".jpeg",
            ".bmp",
            ".gif",
            ".webp",
        ):
            rel = os.path.relpath(os.path.abspath(value), base).replace(os.sep, "/")
            src = html.escape(_quote_path(rel), quote=True)
            alt = html.escape(os.path.basename(value), quote=True)
            return f'<td><a href="{src}"><img src="{src}" alt="{alt}"></a></td>'
        return f"<td>{html.escape(str(value))}</td>"

    header = "".join(f"<th>{html.escape(c)}</th>" for c in (["name"] if captions else []) + columns)
    body = []
    for index, row in enumerate(rows):
        first = f"<td>{html.escape(captions[index])}</td>" if captions else ""
        body.append("<tr>" + first + "".join(cell(v) for v in row) + "</tr>")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;text-align:center}"
        "img{max-width:256px;image-rendering:pixelated;min-width:96px}</style>\n"
        f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n<table>\n"
        f"<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "</table>\n</body>\n</html>\n"
    )
    with atomic_write(path) as f:
        f.write(page)
    return path


def _quote_path(relative: str) -> str:
    from urllib.parse import quote

    return quote(relative, safe="/")
