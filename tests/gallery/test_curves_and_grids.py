"""Learning-curve and sample-grid PNGs, checked against what a reader expects to see."""

import math

import numpy as np
from PIL import Image

from facegan_tf.training.curves import save_learning_curve
from facegan_tf.training.samples import make_grid, save_grid

RED, BLUE = (220, 40, 40), (40, 80, 220)


def _pixels_of(image, color, rows):
    ys, xs = np.nonzero(np.all(image[rows] == color, axis=-1))
    return xs, ys + rows.start


def test_learning_curve_shows_each_series_where_its_values_lie(tmp_path):
    steps = np.arange(0, 201)
    g_loss = 10.0 - 8.0 * steps / 200.0  # a straight line falling from 10 to 2
    path = save_learning_curve(
        str(tmp_path / "learning_curve.png"),
        {"G loss": list(zip(steps, g_loss)), "D loss": [(s, 5.0) for s in steps]},
        {"FID": [(1, 80.0), (2, 60.0), (3, float("nan")), (4, 40.0)]},
        title="test",
    )
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB" and png.size == (720, 540)
        image = np.asarray(png)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 3

    plot = slice(24, 250)  # inside the top panel, below its title and legend line
    red_x, red_y = _pixels_of(image, RED, plot)
    blue_x, blue_y = _pixels_of(image, BLUE, plot)
    assert red_x.size > 400 and blue_x.size > 400
    assert red_x.max() - red_x.min() > 500  # the lines run across the plot
    # Falling loss: down and to the right on screen (y grows downwards).
    assert np.corrcoef(red_x, red_y)[0, 1] > 0.99
    assert blue_y.std() < 1.0
    # On a linear axis from 2 (bottom) to 10 (top), 5 lies 5/8 of the way down.
    fraction = (blue_y.mean() - red_y.min()) / (red_y.max() - red_y.min())
    assert math.isclose(fraction, 5 / 8, abs_tol=0.02)

    fid_x, fid_y = _pixels_of(image, RED, slice(300, 520))  # the metrics panel
    assert fid_x.size > 50 and np.corrcoef(fid_x, fid_y)[0, 1] > 0.9


def test_learning_curve_without_data_draws_no_series(tmp_path):
    path = save_learning_curve(str(tmp_path / "c.png"), {"G loss": []}, {"FID": [(1, math.nan)]})
    image = np.asarray(Image.open(path))
    assert image.shape == (540, 720, 3)
    assert _pixels_of(image, RED, slice(24, 540))[0].size == 0
    assert (image == 0).all(axis=-1).any()  # frames and text are drawn


def test_grid_places_images_row_major_with_padding_and_scales_by_whole_factors(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    grid = make_grid(images, rows=2, cols=2, padding=2)
    expected = np.zeros((2 * 4 + 3 * 2, 2 * 5 + 3 * 2, 3), np.uint8)
    expected[2:6, 2:7] = images[0]
    expected[2:6, 9:14] = images[1]
    expected[8:12, 2:7] = images[2]
    np.testing.assert_array_equal(grid, expected)

    signed = images.astype(np.float64) / 127.5 - 1.0
    np.testing.assert_array_equal(make_grid(signed, 2, 2), expected)

    path = save_grid(str(tmp_path / "grid.png"), images, 2, 2, scale=3)
    saved = np.asarray(Image.open(path))
    np.testing.assert_array_equal(saved, np.kron(expected, np.ones((3, 3, 1), np.uint8)))
