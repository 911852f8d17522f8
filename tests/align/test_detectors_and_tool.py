"""Real detectors on a real photo, and tools/align_faces.py as a user runs it."""

import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from facegan_tf.data.align import align_face
from facegan_tf.data.face_detectors import INSTALL, make_detector
from facegan_tf.data.images import save_image

# Eye centres in skimage's astronaut photo (Eileen Collins), labelled by hand from the
# picture; mtcnn and dlib's 5-point model both agree with them within 3 px.
ASTRONAUT_EYES = ((204.0, 101.0), (246.0, 103.0))


def _needs(name, *modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f"{name} detector not installed: {INSTALL[name]}"
    )


DETECTORS = [
    pytest.param("mtcnn", marks=_needs("mtcnn", "mtcnn")),
    pytest.param("dlib", marks=_needs("dlib", "dlib", "face_recognition_models")),
]


@pytest.fixture(scope="module")
def photos():
    astronaut = data.astronaut()
    face = astronaut[:300, 100:350]
    return {
        "astronaut": astronaut,
        "two faces": np.concatenate([face, face[:, ::-1]], axis=1),
        "gray": np.full((200, 200, 3), 128, np.uint8),
    }


@pytest.fixture(scope="module", params=DETECTORS)
def detector(request):
    return request.param, make_detector(request.param)


def test_detector_finds_the_astronauts_eyes(detector, photos):
    name, detect = detector
    faces = detect(photos["astronaut"])
    assert len(faces) == 1, f"{name}: {faces}"
    np.testing.assert_allclose(faces[0].left_eye, ASTRONAUT_EYES[0], atol=5)
    np.testing.assert_allclose(faces[0].right_eye, ASTRONAUT_EYES[1], atol=5)
    x, y, w, h = faces[0].box
    assert x < 204 and x + w > 246 and y < 101 < y + h


def test_detector_reports_no_face_and_two_faces(detector, photos):
    _, detect = detector
    assert detect(photos["gray"]) == []
    faces = sorted(detect(photos["two faces"]), key=lambda f: f.box[0])
    assert len(faces) == 2
    assert faces[0].right_eye[0] < 250 < faces[1].left_eye[0]  # one face in each half


def test_tilted_photo_comes_out_with_level_eyes(detector, photos):
    """Rotate the photo by 20 degrees; after alignment the eyes are level again."""
    name, detect = detector
    tilted = np.asarray(Image.fromarray(photos["astronaut"]).rotate(20, Image.BICUBIC))
    (face,) = detect(tilted)
    aligned, facts = align_face(tilted, face, 128)
    assert abs(facts["rotation_degrees"] + 20) < 5, facts
    (again,) = detect(np.asarray(Image.fromarray(aligned).resize((256, 256), Image.BICUBIC)))
    dy = (again.right_eye[1] - again.left_eye[1]) / 2  # back in 128-px units
    dx = (again.right_eye[0] - again.left_eye[0]) / 2
    assert abs(dy) < 3 and abs(dx - 38.4) < 5, (name, again)


def test_unknown_detector_is_refused():
    with pytest.raises(ValueError, match="Received: detector='yolo'"):
        make_detector("yolo")


@_needs("mtcnn", "mtcnn")
def test_align_faces_tool_writes_faces_and_reports_the_rest(tool, photos, tmp_path):
    source = tmp_path / "photos"
    save_image(str(source / "astronaut.jpg"), photos["astronaut"])
    tilted = Image.fromarray(photos["astronaut"]).rotate(20, Image.BICUBIC)
    os.makedirs(source / "Reise 2024")
    tilted.save(source / "Reise 2024" / "gekippt ä.png")
    save_image(str(source / "Reise 2024" / "wall.png"), photos["gray"])
    save_image(str(source / "pair.png"), photos["two faces"])
    (source / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "aligned"

    result = tool(
        "align_faces",
        f"--source={source}",
        f"--output_dir={out}",
        "--size=64",
        "--multiple_faces=all",
    )
    assert result.returncode == 0, result.stderr
    assert "align [####################] 5/5" in result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == {
        "photos": 5,
        "faces_written": 4,
        "no_face": 1,
        "several_faces": 1,
        "unreadable": 1,
    }
    report = json.loads((out / "report.json").read_text())
    assert report["no_face"] == [os.path.join("Reise 2024", "wall.png")]
    assert report["several_faces"] == [{"source": "pair.png", "faces": 2}]
    assert [u["source"] for u in report["unreadable"]] == ["broken.jpg"]
    written = sorted(item["output"] for item in report["aligned"])
    assert written == sorted(
        [
            "astronaut.png",
            os.path.join("Reise 2024", "gekippt ä.png"),
            "pair_face0.png",
            "pair_face1.png",
        ]
    )
    for name in written:
        with Image.open(out / name) as image:
            assert image.size == (64, 64) and image.mode == "RGB"
    assert (out / "index.html").is_file()

    again = tool("align_faces", f"--source={source}", f"--output_dir={out}")
    assert again.returncode == 2 and "is not empty" in again.stderr
    assert "Traceback" not in again.stderr
