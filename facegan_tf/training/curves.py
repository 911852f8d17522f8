"""Learning-curve PNGs drawn with PIL (no plotting library needed).

The layout follows sualab's ``learning_curve-result-1``: the top panel holds the per-step
generator (red) and discriminator (blue) losses, the bottom panel the per-epoch FID values.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facegan_tf.fileio import atomic_write

COLORS = ((220, 40, 40), (40, 80, 220), (30, 150, 60), (200, 120, 0), (140, 60, 170))
_WIDTH, _PANEL_HEIGHT, _MARGIN_LEFT, _MARGIN = 720, 260, 64, 24


def _finite(points):
    return [(float(x), float(y)) for x, y in points if math.isfinite(float(y))]


def _draw_panel(draw, font, top: int, title: str, series: dict, x_label: str) -> None:
    left, right = _MARGIN_LEFT, _WIDTH - _MARGIN
    bottom = top + _PANEL_HEIGHT - 36
    draw.rectangle([left, top + 16, right, bottom], outline=(0, 0, 0))
    draw.text((left, top), title, fill=(0, 0, 0), font=font)
    points = {name: _finite(values) for name, values in series.items()}
    everything = [p for values in points.values() for p in values]
    if not everything:
        draw.text((left + 8, top + 24), "no data yet", fill=(120, 120, 120), font=font)
        return
    xs = np.array([p[0] for p in everything])
    ys = np.array([p[1] for p in everything])
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 == x0:
        x0, x1 = x0 - 1.0, x1 + 1.0
    if y1 == y0:
        y0, y1 = y0 - 1.0, y1 + 1.0

    def to_pixel(x, y):
        px = left + 2 + (x - x0) / (x1 - x0) * (right - left - 4)
        py = bottom - 2 - (y - y0) / (y1 - y0) * (bottom - top - 20)
        return px, py

    for fraction in (0.0, 0.5, 1.0):
        value = y0 + fraction * (y1 - y0)
        _, py = to_pixel(x0, value)
        draw.line([left - 4, py, left, py], fill=(0, 0, 0))
        draw.text((4, py - 6), f"{value:.4g}", fill=(0, 0, 0), font=font)
    draw.text((left, bottom + 4), f"{x0:.0f}", fill=(0, 0, 0), font=font)
    draw.text((right - 60, bottom + 4), f"{x1:.0f} {x_label}", fill=(0, 0, 0), font=font)
    legend_x = left + max(120, draw.textlength(title, font=font) + 24)  # after the title
    for index, (name, values) in enumerate(points.items()):
        color = COLORS[index % len(COLORS)]
        draw.text((legend_x, top), name, fill=color, font=font)
        legend_x += 16 + draw.textlength(name, font=font)
        pixels = [to_pixel(x, y) for x, y in values]
        if len(pixels) == 1:
            px, py = pixels[0]
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
        elif pixels:
            draw.line(pixels, fill=color, width=1)
            if len(pixels) <= 50:
                for px, py in pixels:
                    draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)


def save_learning_curve(path: str, losses: dict, metrics: dict, title: str = "") -> str:
    """Writes a two-panel PNG of 720 x 540 pixels, each series a line in its own colour
    (``COLORS`` in order: red, blue, green, ...) on linear axes spanning the data.

    Args:
        path: output ``.png`` (written atomically).
        losses: name -> list of (step, value), e.g. ``{"G loss": ..., "D loss": ...}``.
        metrics: name -> list of (epoch, value), e.g. ``{"FID": ...}``.
        title: text above the top panel.
    """
    image = Image.new("RGB", (_WIDTH, 2 * _PANEL_HEIGHT + 20), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    _draw_panel(draw, font, 4, title or "losses", losses, "step")
    _draw_panel(draw, font, _PANEL_HEIGHT + 16, "metrics", metrics, "epoch")
    with atomic_write(path, "wb", encoding=None) as f:
        image.save(f, format="PNG")
    return path
