"""Images a person can look at: sample grids (PNG) and HTML galleries.

Every test/apply tool and the training sample pages write their ``index.html`` through
`write_gallery`, so all result pages look and behave alike.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from facegan_tf.data.images import convert_channels, save_image, to_uint8
from facegan_tf.fileio import atomic_write


def as_rgb(images: np.ndarray) -> np.ndarray:
    """[..., 1] grayscale panels as [..., 3] (the plane replicated); RGB is returned as is.

    Lets one grid show domains with different channel counts side by side (e.g. a grayscale
    input next to its RGB translation).
    """
    return convert_channels(images, 3)


def stack_panels(panels) -> np.ndarray:
    """Interleaves equally long [N, H, W, C_k] batches (C_k 1 or 3, float or uint8) into one
    [N * K, H, W, C] batch, row i holding ``panels[k][i]`` for k = 0..K-1. When the channel
    counts differ every panel is shown as RGB (`as_rgb`)."""
    panels = [np.asarray(p) for p in panels]
    if len({p.shape[-1] for p in panels}) > 1:
        panels = [as_rgb(p) for p in panels]
    return np.stack(panels, axis=1).reshape(-1, *panels[0].shape[1:])


def newest_first(names) -> list[str]:
    """Sample file names ``<label>_<step>.png`` ordered by step number, newest first (names
    of one step in text order); names without a number come last."""

    def key(name):
        match = re.search(r"(\d+)\D*$", name)
        return (-int(match.group(1)) if match else 1, name)

    return sorted(names, key=key)


def make_grid(images: np.ndarray, rows: int, cols: int, padding: int = 2) -> np.ndarray:
    """Tiles [N, H, W, C] images (float in [-1, 1] or uint8; C 1 or 3) row-major into one
    uint8 RGB image (grayscale replicated).

    Missing cells (N < rows * cols) stay black; extra images are dropped.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape [N, H, W, C]. Received: shape={images.shape}")
    if images.dtype != np.uint8:
        images = to_uint8(images)
    images = as_rgb(images)
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


#: File endings shown as images in a gallery cell; any other value is shown as text.
GALLERY_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

_SMALLEST_SHOWN = 128  # tiny images are enlarged by a whole factor up to at least this width
_PAGE_STYLE = """
:root{color-scheme:light dark;--line:#8884;--head:#8882}
body{font-family:system-ui,sans-serif;margin:1.5rem;line-height:1.4}
h1{font-size:1.4rem;margin:0 0 .5rem}
dl.notes{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;margin:0 0 1rem}
dl.notes dt{font-weight:600}dl.notes dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:center;vertical-align:middle}
thead th{position:sticky;top:0;background:Canvas;box-shadow:inset 0 -2px var(--line)}
tbody tr:nth-child(even){background:var(--head)}
th[scope=row]{text-align:left;font-weight:normal;max-width:16rem;overflow-wrap:anywhere}
img{display:block;margin:auto;height:auto;max-width:none}
img.pixelated{image-rendering:pixelated}
td.missing{color:#888}
footer{margin-top:1rem;color:#888;font-size:.85rem}
""".strip()


def write_gallery(
    path: str,
    title: str,
    columns: list[str],
    rows: list[list[str]],
    captions: list[str] | None = None,
    notes: dict | list | None = None,
    caption_header: str = "name",
    max_image_width: int | None = None,
) -> str:
    """Writes an HTML5 page with a table: one row per entry, one column per header.

    Typical use is ``input | output per age group`` or ``input | A->B | B->A``. Each image
    links to the file itself (relative, URL-quoted links, so the folder can be moved or
    served as is and file names with spaces or non-ASCII letters work). Images are shown at
    a readable size: an image narrower than 128 px is enlarged by the smallest whole factor
    that reaches 128 px with nearest-neighbour scaling (``image-rendering: pixelated``), a
    wide one is shrunk to ``max_image_width`` (default 768 px for one image column, 512 for
    two, 256 for more), keeping its aspect ratio.

    Args:
        path: the HTML file; image links are made relative to its folder.
        title: page title and heading.
        columns: header of each column.
        rows: per row, one cell per column: an image path (shown as an image when it ends in
            one of ``GALLERY_IMAGE_EXTENSIONS``), other text (shown as text), or ``""`` (an
            empty cell). Rows shorter than ``columns`` are padded with empty cells.
        captions: optional per-row text shown in a first column headed ``caption_header``.
        notes: optional facts shown under the heading, e.g. ``{"model": ..., "checkpoint":
            ..., "date": ...}`` (a dict, or a list of ``(name, value)`` pairs or strings).
        caption_header: header of the caption column.
        max_image_width: display width limit in CSS pixels (see above).

    Returns:
        ``path``.
    """
    columns = [str(c) for c in columns]
    rows = [list(row) for row in rows]
    if captions is not None and len(captions) != len(rows):
        raise ValueError(
            f"write_gallery needs one caption per row. Received: {len(captions)} captions "
            f"for {len(rows)} rows"
        )
    too_long = [i for i, row in enumerate(rows) if len(row) > len(columns)]
    if too_long:
        raise ValueError(
            f"Row {too_long[0]} has {len(rows[too_long[0]])} cells but the gallery has "
            f"{len(columns)} columns. Received: columns={columns}"
        )
    base = os.path.dirname(os.path.abspath(path))
    image_columns = max([sum(1 for value in row if _is_image(value)) for row in rows] or [1])
    if max_image_width is None:
        max_image_width = {0: 768, 1: 768, 2: 512}.get(image_columns, 256)

    def cell(value) -> str:
        if value is None or value == "":
            return "<td></td>"
        if not _is_image(value):
            return f"<td>{_escape(value)}</td>"
        src = html.escape(_relative_url(str(value), base), quote=True)
        name = os.path.basename(str(value))
        size = _image_size(str(value))
        if size is None:
            alt = _escape(f"{name} (not readable)")
            return f'<td class="missing"><a href="{src}"><img src="{src}" alt="{alt}"></a></td>'
        width, height = _display_size(*size, max_image_width)
        pixelated = ' class="pixelated"' if width > size[0] else ""
        label = _escape(f"{name} ({size[0]}x{size[1]})")
        return (
            f'<td><a href="{src}"><img src="{src}" alt="{label}" title="{label}" '
            f'width="{width}" height="{height}"{pixelated} loading="lazy"></a></td>'
        )

    header = ""
    if captions is not None:
        header += f'<th scope="col">{_escape(caption_header)}</th>'
    header += "".join(f'<th scope="col">{_escape(c)}</th>' for c in columns)
    body = []
    for index, row in enumerate(rows):
        row = row + [""] * (len(columns) - len(row))
        first = f'<th scope="row">{_escape(captions[index])}</th>' if captions is not None else ""
        body.append("<tr>" + first + "".join(cell(v) for v in row) + "</tr>")
    if not rows:
        span = len(columns) + (1 if captions is not None else 0)
        body.append(f'<tr><td colspan="{max(span, 1)}">nothing to show yet</td></tr>')
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="facegan_tf">\n'
        f"<title>{_escape(title)}</title>\n<style>\n{_PAGE_STYLE}\n</style>\n"
        f"</head>\n<body>\n<h1>{_escape(title)}</h1>\n" + _notes_html(notes) + "<table>\n"
        f"<thead><tr>{header}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "</table>\n"
        f"<footer>{len(rows)} row{'s' if len(rows) != 1 else ''}; "
        "click an image to open it at full size.</footer>\n"
        "</body>\n</html>\n"
    )
    with atomic_write(path) as f:
        f.write(page)
    return path


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _is_image(value) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(
        GALLERY_IMAGE_EXTENSIONS
    )


def _relative_url(file_path: str, base: str) -> str:
    """URL of ``file_path`` relative to the folder ``base``: '/'-separated, percent-encoded."""
    target = os.path.abspath(file_path)
    try:
        relative = os.path.relpath(target, base)
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(target).as_uri()
    return quote(relative.replace(os.sep, "/"), safe="/")


def _image_size(file_path: str) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when it is missing or unreadable."""
    try:
        with Image.open(file_path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError):
        return None


def _display_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Tiny images grow by the smallest whole factor reaching 128 px (capped at
    ``max_width``); wide ones shrink to ``max_width``; the aspect ratio is kept."""
    if width <= 0 or height <= 0:
        return width, height
    if width < _SMALLEST_SHOWN:
        factor = -(-_SMALLEST_SHOWN // width)
        factor = max(1, min(factor, max_width // width))
        return width * factor, height * factor
    if width > max_width:
        return max_width, max(1, round(height * max_width / width))
    return width, height


def _notes_html(notes) -> str:
    if not notes:
        return ""
    items = notes.items() if isinstance(notes, dict) else notes
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(f"<dt>note</dt><dd>{_escape(item)}</dd>")
        else:
            name, value = item
            lines.append(f"<dt>{_escape(name)}</dt><dd>{_escape(value)}</dd>")
    return '<dl class="notes">\n' + "\n".join(lines) + "\n</dl>\n"
