"""Face alignment: rotate so the eyes are level, scale to a fixed margin, crop a square.

Geometry (pure NumPy/PIL; the face detector lives in `facegan_tf.data.face_detectors`).
Let ``l`` and ``r`` be the centres of the image-left and image-right eye, ``d = |r - l|`` the
inter-eye distance and ``a = atan2(r_y - l_y, r_x - l_x)`` the eye line's angle. The output
is a square of ``size`` pixels holding a *face square* of side ``(1 - 2 * margin) * size``
centred horizontally, with ``margin * size`` pixels of context on every side. The face
square is ``2 d`` source pixels wide and the eye line lies at ``eye_line`` of its height.
So the similarity transform from source to output is

    p_out = s * R(-a) * (p_in - (l + r) / 2) + c,
    s = (1 - 2 * margin) * size / (2 d),
    c = (size / 2, margin * size + eye_line * (1 - 2 * margin) * size),

and the eyes land level at ``c -/+ ((1 - 2 * margin) * size / 4, 0)``. With the defaults
(``margin=0.2, eye_line=0.4``) and ``size=256`` that is (89.6, 112.64) and (166.4, 112.64).

Coordinates are pixel indices (the centre of pixel ``(i, j)`` is ``x = j, y = i``), the
convention of landmark detectors.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from facegan_tf.data.images import ImageReadError, is_image_file, read_image, save_image
from facegan_tf.fileio import write_json_atomic

BORDERS = ("edge", "black")
MULTIPLE_FACE_POLICIES = ("largest", "all", "skip")


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` is (x, y, width, height) in pixels, eyes are (x, y)
    centres, ``left_eye`` being the one with the smaller x in an upright face."""

    box: tuple[float, float, float, float]
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    confidence: float = 1.0
    landmarks: dict = field(default_factory=dict)

    @property
    def area(self) -> float:
        return float(self.box[2]) * float(self.box[3])


def check_alignment_options(size: int, margin: float, eye_line: float) -> None:
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(
            f"The crop size must be an integer of at least 8 pixels. Received: size={size}"
        )
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5). Received: margin={margin}")
    if not 0.0 < eye_line < 1.0:
        raise ValueError(f"eye_line must be in (0, 1). Received: eye_line={eye_line}")


def eye_alignment_matrix(
    left_eye, right_eye, size: int, margin: float = 0.2, eye_line: float = 0.4
) -> np.ndarray:
    """The 2x3 forward similarity matrix ``A`` with ``p_out = A @ [x, y, 1]`` (module docstring)."""
    check_alignment_options(size, margin, eye_line)
    left = np.asarray(left_eye, np.float64)
    right = np.asarray(right_eye, np.float64)
    delta = right - left
    distance = float(np.hypot(*delta))
    if not math.isfinite(distance) or distance <= 0.0:
        raise ValueError(
            f"The eyes must be two distinct points. Received: left_eye={tuple(left)}, "
            f"right_eye={tuple(right)}"
        )
    face_side = (1.0 - 2.0 * margin) * size
    scale = face_side / (2.0 * distance)
    cos, sin = delta / distance * scale  # scale * (cos a, sin a)
    linear = np.array([[cos, sin], [-sin, cos]])  # scale * R(-a)
    target = np.array([size / 2.0, margin * size + eye_line * face_side])
    offset = target - linear @ ((left + right) / 2.0)
    return np.hstack([linear, offset[:, None]])


def transform_points(matrix: np.ndarray, points) -> np.ndarray:
    """Applies a 2x3 affine matrix to [N, 2] points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_square(
    image: np.ndarray, matrix: np.ndarray, size: int, border: str = "edge"
) -> tuple[np.ndarray, float]:
    """Resamples ``image`` (uint8 [H, W, 3]) through ``matrix`` into a ``size`` square.

    Bicubic interpolation. Output pixels whose source lies outside the photo repeat its
    nearest edge pixel (``border="edge"``) or are black (``"black"``).

    Returns:
        (aligned uint8 [size, size, 3], fraction of output pixels taken from outside).
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}. Received: border={border!r}")
    height, width = image.shape[:2]
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    source = transform_points(inverse[:2], corners)
    pad = 0
    if border == "edge":
        reach = max(
            -source[:, 0].min(),
            -source[:, 1].min(),
            source[:, 0].max() - (width - 1),
            source[:, 1].max() - (height - 1),
            0.0,
        )
        pad = int(math.ceil(reach)) + 2
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    # PIL samples the input at inverse(p + 0.5) - 0.5 in index coordinates: conjugate the
    # index-convention inverse with half-pixel shifts, and with the padding offset.
    shift_out = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    shift_in = np.array([[1, 0, 0.5 + pad], [0, 1, 0.5 + pad], [0, 0, 1]])
    pil_inverse = shift_in @ inverse @ shift_out
    coefficients = tuple(pil_inverse[:2].reshape(-1))
    aligned = Image.fromarray(image).transform(
        (size, size), Image.AFFINE, coefficients, resample=Image.BICUBIC, fillcolor=(0, 0, 0)
    )
    # Outside fraction: where the inverse-mapped pixel centre falls outside the photo.
    ys, xs = np.mgrid[0:size, 0:size]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    where = transform_points(inverse[:2], grid)
    outside = (
        (where[:, 0] < -0.5)
        | (where[:, 1] < -0.5)
        | (where[:, 0] > width - 0.5)
        | (where[:, 1] > height - 0.5)
    )
    return np.asarray(aligned, np.uint8), float(outside.mean())


def align_face(
    image: np.ndarray,
    face: Face,
    size: int,
    margin: float = 0.2,
    eye_line: float = 0.4,
    border: str = "edge",
) -> tuple[np.ndarray, dict]:
    """Aligned square crop of one face, plus facts for a report (scale, angle, outside)."""
    matrix = eye_alignment_matrix(face.left_eye, face.right_eye, size, margin, eye_line)
    aligned, outside = warp_square(image, matrix, size, border)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    angle = math.degrees(math.atan2(-matrix[1, 0], matrix[0, 0]))
    return aligned, {
        "scale": round(scale, 4),
        "rotation_degrees": round(angle, 2),
        "outside_fraction": round(outside, 4),
        "confidence": round(float(face.confidence), 4),
        "box": [round(float(v), 1) for v in face.box],
    }


def find_photos(source: str, skip_folder: str | None = None) -> list[tuple[str, str]]:
    """(path, path relative to ``source``) of every image file in ``source`` and its
    sub-folders, sorted; ``source`` may also be one file. ``skip_folder`` is left out."""
    if os.path.isfile(source):
        return [(source, os.path.basename(source))]
    if not os.path.isdir(source):
        raise FileNotFoundError(f"--source {source!r} is neither an image file nor a folder.")
    skip = os.path.realpath(skip_folder) if skip_folder else None
    found = []
    for folder, subfolders, names in os.walk(source):
        subfolders[:] = sorted(
            s
            for s in subfolders
            if not s.startswith(".") and os.path.realpath(os.path.join(folder, s)) != skip
        )
        for name in names:
            path = os.path.join(folder, name)
            if is_image_file(name) and os.path.isfile(path):
                found.append((path, os.path.relpath(path, source)))
    found.sort(key=lambda item: item[1])
    if not found:
        raise ValueError(f"--source {source!r} holds no image files.")
    return found


def align_photos(
    source: str,
    output_dir: str,
    detect,
    size: int,
    margin: float = 0.2,
    eye_line: float = 0.4,
    multiple_faces: str = "largest",
    border: str = "edge",
    on_photo=None,
    settings: dict | None = None,
) -> dict:
    """Detects, aligns and writes every face of the photos in ``source``.

    Each output is ``<output_dir>/<relative folder>/<name>.png`` (``<name>_face<k>.png``
    for every face with ``multiple_faces="all"``, ordered from the largest face). Photos
    with no face, with several faces (``"largest"`` keeps the largest box, ``"skip"`` writes
    nothing) and unreadable files are listed in the returned report, which is also written
    to ``<output_dir>/report.json``.

    Args:
        detect: callable uint8 [H, W, 3] -> list of `Face`.
        on_photo: optional callable run after each photo (e.g. a progress bar's update).
        settings: extra facts recorded in the report (e.g. the detector's name).
    """
    check_alignment_options(size, margin, eye_line)
    if multiple_faces not in MULTIPLE_FACE_POLICIES:
        raise ValueError(
            f"multiple_faces must be one of {MULTIPLE_FACE_POLICIES}. "
            f"Received: multiple_faces={multiple_faces!r}"
        )
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}. Received: border={border!r}")
    photos = find_photos(source, skip_folder=output_dir)
    report = {
        "source": os.path.abspath(source),
        "size": size,
        "margin": margin,
        "eye_line": eye_line,
        "multiple_faces": multiple_faces,
        "border": border,
        **(settings or {}),
        "aligned": [],
        "no_face": [],
        "several_faces": [],
        "unreadable": [],
    }
    for path, relative in photos:
        try:
            image = read_image(path)
        except (ImageReadError, OSError) as error:
            report["unreadable"].append({"source": relative, "error": str(error)})
            if on_photo:
                on_photo()
            continue
        faces = sorted(detect(image), key=lambda face: -face.area)
        if not faces:
            report["no_face"].append(relative)
        else:
            if len(faces) > 1:
                report["several_faces"].append({"source": relative, "faces": len(faces)})
            if len(faces) == 1 or multiple_faces != "skip":
                chosen = faces if multiple_faces == "all" else faces[:1]
                stem = os.path.splitext(relative)[0]
                for index, face in enumerate(chosen):
                    suffix = f"_face{index}" if len(chosen) > 1 else ""
                    output = stem + suffix + ".png"
                    aligned, facts = align_face(image, face, size, margin, eye_line, border)
                    save_image(os.path.join(output_dir, output), aligned)
                    report["aligned"].append({"source": relative, "output": output, **facts})
        if on_photo:
            on_photo()
    report["counts"] = {
        "photos": len(photos),
        "faces_written": len(report["aligned"]),
        "no_face": len(report["no_face"]),
        "several_faces": len(report["several_faces"]),
        "unreadable": len(report["unreadable"]),
    }
    write_json_atomic(os.path.join(output_dir, "report.json"), report)
    return report
