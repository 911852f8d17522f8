"""Fréchet distance, KID and statistics files against independent reference computations."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import scipy.linalg

from facegan_tf.eval import frechet


def _sqrtm_fid(x, y):
    """TTUR's route: scipy sqrtm of the product, real part of the trace."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_x @ s_y)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y)
                 - 2 * np.trace(covmean).real)


def _naive_mmd2(x, y):
    m, d = x.shape

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    pairs = [(i, j) for i, j in itertools.product(range(m), repeat=2) if i != j]
    xx = sum(k(x[i], x[j]) for i, j in pairs) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in pairs) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_statistics_are_mean_and_unbiased_covariance():
    x = np.random.default_rng(1).normal(size=(30, 6)).astype(np.float32)
    mu, sigma = frechet.feature_statistics(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet.feature_statistics(x[:1])


@pytest.mark.parametrize("n, d", [(200, 16), (40, 50)])
def test_fid_matches_scipy_sqrtm(n, d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(n, d))
    y = rng.normal(loc=0.3, scale=1.5, size=(n, d)) + 0.2 * x
    expected = _sqrtm_fid(x, y)
    assert frechet.fid_from_features(x, y) == pytest.approx(expected, rel=1e-6)


def test_fid_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.1, 4, size=8), rng.uniform(0.1, 4, size=8)
    mu_1, mu_2 = rng.normal(size=8), rng.normal(size=8)
    expected = ((mu_1 - mu_2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    value = frechet.frechet_distance(mu_1, np.diag(a), mu_2, np.diag(b))
    assert value == pytest.approx(expected, rel=1e-12)


def test_sqrt_scale_is_the_root_of_the_squared_distance():
    assert frechet.fid_sqrt_scale(1206.0) == pytest.approx(34.727, abs=1e-3)
    assert frechet.fid_sqrt_scale(-1e-9) == 0.0


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(4).normal(size=(50, 20))
    mu, sigma = frechet.feature_statistics(x)
    assert abs(frechet.frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"sigma_2.shape=\(3, 3\)"):
        frechet.frechet_distance(np.zeros(4), np.eye(4), np.zeros(4), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet.frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


def test_mmd_matches_naive_double_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 5)), rng.normal(loc=0.5, size=(7, 5))
    assert frechet.mmd2_unbiased(x, y) == pytest.approx(_naive_mmd2(x, y), rel=1e-10)


def test_kid_matches_naive_subsets():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(12, 4)), rng.normal(loc=0.3, size=(9, 4))
    mean, std = frechet.kernel_inception_distance(real, fake, num_subsets=5,
                                                  max_subset_size=6, seed=11)
    draw = np.random.default_rng(11)
    values = []
    for _ in range(5):
        fake_idx = draw.choice(9, 6, replace=False)
        real_idx = draw.choice(12, 6, replace=False)
        values.append(_naive_mmd2(fake[fake_idx], real[real_idx]))
    assert mean == pytest.approx(np.mean(values), rel=1e-9)
    assert std == pytest.approx(np.std(values), rel=1e-7)


def test_kid_rejects_too_few_samples():
    with pytest.raises(ValueError, match="num_real=1"):
        frechet.kernel_inception_distance(np.ones((1, 3)), np.ones((5, 3)))


def _stats(network="net-a", resolution="64x64", with_features=True):
    features = np.random.default_rng(7).normal(size=(10, 4)).astype(np.float32)
    stats = frechet.FeatureStatistics.from_features(features, network=network,
                                                    resolution=resolution, data_key="k")
    if not with_features:
        stats.features = None
    return stats


def test_statistics_file_round_trip(tmp_path):
    stats = _stats()
    path = str(tmp_path / "stats.npz")
    frechet.save_statistics(path, stats)
    loaded = frechet.load_statistics(path, expected_network="net-a", expected_resolution="64x64")
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    np.testing.assert_array_equal(loaded.features, stats.features)
    assert (loaded.num_images, loaded.network, loaded.resolution, loaded.data_key) == (
        10, "net-a", "64x64", "k")


def test_statistics_of_another_network_or_resolution_are_refused(tmp_path):
    path = str(tmp_path / "stats.npz")
    frechet.save_statistics(path, _stats())
    with pytest.raises(ValueError, match=r"stats.npz.*network='net-a'.*network='net-b'"):
        frechet.load_statistics(path, expected_network="net-b")
    with pytest.raises(ValueError, match=r"stats.npz.*resolution='64x64'.*'128x128'"):
        frechet.load_statistics(path, expected_resolution="128x128")


def test_foreign_statistics_with_mu_sigma_only_are_read(tmp_path):
    path = str(tmp_path / "ttur.npz")
    np.savez(path, mu=np.zeros(3), sigma=np.eye(3))
    stats = frechet.load_statistics(path, expected_network="net-a", expected_resolution="8x8")
    assert stats.features is None and stats.mu.shape == (3,)
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(ValueError, match="must hold 'mu' and 'sigma'"):
        frechet.load_statistics(bad)
    with pytest.raises(FileNotFoundError):
        frechet.load_statistics(str(tmp_path / "missing.npz"))


def test_cache_computes_once_per_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return _stats(network="net-a", resolution="64x64")

    cache = str(tmp_path / "cache")
    first = frechet.cached_statistics(cache, "k", "64x64", "net-a", compute)
    second = frechet.cached_statistics(cache, "k", "64x64", "net-a", compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.sigma, second.sigma)
    assert frechet.statistics_cache_path(cache, "k", "32x32", "net-a") != \
        frechet.statistics_cache_path(cache, "k", "64x64", "net-a")
    assert len(os.listdir(cache)) == 1
