"""Alignment geometry, independent of any detector: synthetic eyes with known positions."""

import math

import numpy as np
import pytest

from facegan_tf.data.align import Face, align_face, eye_alignment_matrix, transform_points

# size 256, margin 0.2, eye_line 0.4 (the defaults), by hand: the face square is
# 0.6 * 256 = 153.6 px wide and starts at 51.2 px; the eyes are half of it apart (76.8 px),
# centred at x = 128, on the line y = 51.2 + 0.4 * 153.6 = 112.64.
LEFT_OUT, RIGHT_OUT = (89.6, 112.64), (166.4, 112.64)


def _rotate(point, center, degrees):
    a = math.radians(degrees)
    x, y = point[0] - center[0], point[1] - center[1]
    return (
        center[0] + x * math.cos(a) - y * math.sin(a),
        center[1] + x * math.sin(a) + y * math.cos(a),
    )


@pytest.mark.parametrize("degrees", [0.0, 17.0, -35.0, 60.0])
def test_eyes_land_level_at_the_hand_computed_positions(degrees):
    center = (140.0, 90.0)
    left = _rotate((120.0, 90.0), center, degrees)  # 40 px apart before rotation
    right = _rotate((160.0, 90.0), center, degrees)
    nose = _rotate((140.0, 120.0), center, degrees)
    matrix = eye_alignment_matrix(left, right, 256)
    out = transform_points(matrix, [left, right, nose])
    np.testing.assert_allclose(out[0], LEFT_OUT, atol=1e-9)
    np.testing.assert_allclose(out[1], RIGHT_OUT, atol=1e-9)
    # A similarity: equal scale on both axes, no shear, no mirror; the nose stays below the
    # eyes on the vertical through their midpoint, scaled by 76.8 / 40.
    linear = matrix[:, :2]
    np.testing.assert_allclose(linear @ linear.T, np.eye(2) * (76.8 / 40) ** 2, atol=1e-9)
    assert np.linalg.det(linear) > 0
    np.testing.assert_allclose(out[2], (128.0, 112.64 + 30 * 76.8 / 40), atol=1e-9)


def test_other_sizes_and_margins_follow_the_definition():
    matrix = eye_alignment_matrix((10.0, 10.0), (30.0, 10.0), 400, margin=0.25, eye_line=0.5)
    # face square 200 px from 100 px; eyes 100 px apart around x = 200 on y = 100 + 100.
    np.testing.assert_allclose(
        transform_points(matrix, [(10.0, 10.0), (30.0, 10.0)]), [(150, 200), (250, 200)]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (((5, 5), (5, 5), 256), "two distinct points"),
        (((0, 0), (1, 0), 256, 0.5), "margin"),
        (((0, 0), (1, 0), 4), "at least 8"),
        (((0, 0), (1, 0), 64, 0.2, 1.0), "eye_line"),
    ],
)
def test_bad_geometry_is_refused_with_the_value(args, message):
    with pytest.raises(ValueError, match=message):
        eye_alignment_matrix(*args)


def _dot_centroid(image, color):
    mask = np.all(np.abs(image.astype(int) - color) < 60, axis=-1)
    ys, xs = np.nonzero(mask)
    assert xs.size > 0, f"no pixel of colour {color}"
    return xs.mean(), ys.mean()


@pytest.mark.parametrize("degrees", [0.0, 25.0, -40.0])
def test_aligned_pixels_put_the_eyes_where_the_matrix_says(degrees):
    """Paint a red and a blue 5x5 'eye' on gray, tilt them, align: the dots sit level."""
    image = np.full((240, 320, 3), 128, np.uint8)
    center = (160.0, 120.0)
    left = _rotate((130.0, 120.0), center, degrees)
    right = _rotate((190.0, 120.0), center, degrees)
    for (x, y), color in ((left, (255, 0, 0)), (right, (0, 0, 255))):
        image[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3] = color
    left_px = (round(left[0]), round(left[1]))
    right_px = (round(right[0]), round(right[1]))
    face = Face(box=(100, 80, 120, 120), left_eye=left_px, right_eye=right_px)
    aligned, facts = align_face(image, face, 128, border="black")
    assert aligned.shape == (128, 128, 3) and aligned.dtype == np.uint8
    expected = transform_points(eye_alignment_matrix(left_px, right_px, 128), [left_px, right_px])
    # By hand for size 128: eyes at (44.8, 56.32) and (83.2, 56.32).
    np.testing.assert_allclose(
        expected, [(44.8, 56.32), (83.2, 56.32)], atol=1.0
    )  # eyes rounded to pixels
    np.testing.assert_allclose(_dot_centroid(aligned, (255, 0, 0)), expected[0], atol=0.75)
    np.testing.assert_allclose(_dot_centroid(aligned, (0, 0, 255)), expected[1], atol=0.75)
    assert math.isclose(facts["scale"], 38.4 / 60, rel_tol=0.02)
    assert facts["outside_fraction"] == 0.0 if degrees == 0.0 else facts["outside_fraction"] < 0.1


def test_borders_outside_the_photo():
    image = np.full((60, 60, 3), 200, np.uint8)
    face = Face(box=(0, 0, 20, 20), left_eye=(2.0, 3.0), right_eye=(12.0, 3.0))  # at a corner
    black, facts = align_face(image, face, 64, border="black")
    edge, _ = align_face(image, face, 64, border="edge")
    assert 0.2 < facts["outside_fraction"] < 0.8
    assert (black == 0).all(axis=-1).mean() > 0.2
    assert (edge >= 199).all()  # edge pixels repeated: the flat photo stays flat
