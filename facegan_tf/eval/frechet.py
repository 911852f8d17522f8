"""Fréchet Inception Distance, Kernel Inception Distance and cached feature statistics.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium") is the squared Fréchet distance between two Gaussians fitted to features:

    FID = ||mu_1 - mu_2||^2 + Tr(S_1) + Tr(S_2) - 2 Tr((S_1 S_2)^{1/2})

with mu the feature mean and S the unbiased (N - 1) covariance, all in float64. The trace of
the matrix square root uses the symmetric form: S_1 S_2 is similar to M = R S_2 R with
R = S_1^{1/2}, a symmetric PSD matrix, so Tr((S_1 S_2)^{1/2}) = sum_i sqrt(lambda_i(M)); both
roots come from ``eigh`` with eigenvalues at the round-off level set to 0. No complex values,
no ``scipy.linalg.sqrtm``.

KID (Bińkowski et al. 2018, "Demystifying MMD GANs") is the unbiased MMD^2 with the
polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass

import numpy as np

#: Keys of a statistics file besides ``mu`` and ``sigma``.
_META_KEYS = ("network", "resolution", "data_key", "num_images")


def _as_matrix(features, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a [N, D] feature matrix. "
                         f"Received: {name}.shape={features.shape}")
    return features


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) in float64: the mean and the unbiased (N - 1) covariance of [N, D] features."""
    features = _as_matrix(features, "features")
    if features.shape[0] < 2:
        raise ValueError("feature statistics need at least 2 samples. "
                         f"Received: features.shape={features.shape}")
    mu = features.mean(axis=0)
    centred = features - mu
    sigma = centred.T @ centred / (features.shape[0] - 1)
    return mu, sigma


def _clip_round_off(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues at or below the round-off level dim * eps * max|lambda| are set to 0.

    A rank-deficient covariance (N <= D) has D - N + 1 zero eigenvalues that ``eigh``
    returns as +-1e-16-sized noise; their square roots (~1e-8 each) would otherwise add up
    to a visible bias.
    """
    scale = float(np.abs(eigenvalues).max(initial=0.0))
    threshold = eigenvalues.shape[0] * np.finfo(np.float64).eps * scale
    return np.where(eigenvalues > threshold, eigenvalues, 0.0)


def trace_sqrt_product(sigma_1, sigma_2) -> float:
    """Tr((S_1 S_2)^{1/2}) = sum_i sqrt(lambda_i(R S_2 R)), R = S_1^{1/2}, in float64.

    With S_1 = V diag(l) V^T, the non-zero eigenvalues of R S_2 R are those of the k x k
    matrix B^T S_2 B, B = V_k diag(sqrt(l_k)) over the k non-zero eigenvalues of S_1; for a
    rank-deficient S_1 (N <= D) this is a much smaller second eigenproblem.
    """
    sigma_1 = np.asarray(sigma_1, dtype=np.float64)
    sigma_2 = np.asarray(sigma_2, dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh((sigma_1 + sigma_1.T) / 2)
    eigenvalues = _clip_round_off(eigenvalues)
    keep = eigenvalues > 0
    basis = eigenvectors[:, keep] * np.sqrt(eigenvalues[keep])
    middle = basis.T @ sigma_2 @ basis
    inner = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(_clip_round_off(inner)).sum())


def frechet_distance(mu_1, sigma_1, mu_2, sigma_2) -> float:
    """Squared Fréchet distance of N(mu_1, S_1) and N(mu_2, S_2) (FID is this, not its root)."""
    mu_1 = np.atleast_1d(np.asarray(mu_1, dtype=np.float64))
    mu_2 = np.atleast_1d(np.asarray(mu_2, dtype=np.float64))
    sigma_1 = np.atleast_2d(np.asarray(sigma_1, dtype=np.float64))
    sigma_2 = np.atleast_2d(np.asarray(sigma_2, dtype=np.float64))
    dim = mu_1.shape[0]
    for name, value, shape in (("mu_1", mu_1, (dim,)), ("mu_2", mu_2, (dim,)),
                               ("sigma_1", sigma_1, (dim, dim)),
                               ("sigma_2", sigma_2, (dim, dim))):
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape} to match mu_1. "
                             f"Received: {name}.shape={value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} holds NaN or infinite values. Received: {name}={value}")
    diff = mu_1 - mu_2
    value = (diff @ diff + np.trace(sigma_1) + np.trace(sigma_2)
             - 2.0 * trace_sqrt_product(sigma_1, sigma_2))
    return float(value)


def fid_sqrt_scale(fid: float) -> float:
    """sqrt(FID), the scale sualab/DCGAN_Face_gen_tf reports; never compare it with an FID."""
    return float(np.sqrt(max(fid, 0.0)))


def fid_from_features(features_1, features_2) -> float:
    """FID between two [N, D] feature sets (float64 statistics)."""
    mu_1, sigma_1 = feature_statistics(features_1)
    mu_2, sigma_2 = feature_statistics(features_2)
    return frechet_distance(mu_1, sigma_1, mu_2, sigma_2)


def mmd2_unbiased(features_x, features_y) -> float:
    """Unbiased MMD^2 of two equal-size sets with k(a, b) = (a.b / d + 1)^3.

    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
              - 2 sum_{i,j} k(x_i, y_j) / m^2            (Bińkowski et al. 2018, eq. 2)
    """
    x = _as_matrix(features_x, "features_x")
    y = _as_matrix(features_y, "features_y")
    if x.shape != y.shape or x.shape[0] < 2:
        raise ValueError("MMD needs two sets of equal shape [m >= 2, d]. "
                         f"Received: features_x.shape={x.shape}, features_y.shape={y.shape}")
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(off_diagonal - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(features_real, features_fake, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: (mean, std) of ``mmd2_unbiased`` over ``num_subsets`` random subsets.

    Each subset draws m = min(N_real, N_fake, max_subset_size) samples without replacement,
    independently from each set (the stylegan2-ada / clean-fid protocol).
    """
    real = _as_matrix(features_real, "features_real")
    fake = _as_matrix(features_fake, "features_fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError("real and fake features must have the same dimension. "
                         f"Received: features_real.shape={real.shape}, "
                         f"features_fake.shape={fake.shape}")
    if num_subsets < 1 or max_subset_size < 2:
        raise ValueError("KID needs num_subsets >= 1 and max_subset_size >= 2. Received: "
                         f"num_subsets={num_subsets}, max_subset_size={max_subset_size}")
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 fake samples. Received: "
                         f"num_real={real.shape[0]}, num_fake={fake.shape[0]}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        fake_subset = fake[rng.choice(fake.shape[0], m, replace=False)]
        real_subset = real[rng.choice(real.shape[0], m, replace=False)]
        values.append(mmd2_unbiased(fake_subset, real_subset))
    return float(np.mean(values)), float(np.std(values))


@dataclass
class FeatureStatistics:
    """mu/sigma of a feature set with what they were computed from.

    ``features`` (float32 [N, D]) is kept when known, so that KID can be computed too;
    statistics files of TTUR or pytorch-fid hold only ``mu`` and ``sigma``.
    """

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int
    network: str = ""
    resolution: str = ""
    data_key: str = ""
    features: np.ndarray | None = None

    @classmethod
    def from_features(cls, features, network: str = "", resolution: str = "",
                      data_key: str = "") -> FeatureStatistics:
        mu, sigma = feature_statistics(features)
        return cls(mu=mu, sigma=sigma, num_images=int(np.shape(features)[0]), network=network,
                   resolution=resolution, data_key=data_key,
                   features=np.asarray(features, dtype=np.float32))


def save_statistics(path: str, stats: FeatureStatistics) -> None:
    """Writes ``mu``, ``sigma`` (float64) and the labels (and ``features``) to an ``.npz``."""
    arrays = {
        "mu": np.asarray(stats.mu, np.float64),
        "sigma": np.asarray(stats.sigma, np.float64),
        "network": np.asarray(stats.network),
        "resolution": np.asarray(stats.resolution),
        "data_key": np.asarray(stats.data_key),
        "num_images": np.asarray(stats.num_images, np.int64),
    }
    if stats.features is not None:
        arrays["features"] = np.asarray(stats.features, np.float32)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    if not tmp_path.endswith(".npz"):
        tmp_path += ".npz"
    try:
        np.savez(tmp_path, **arrays)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def load_statistics(path: str, expected_network: str | None = None,
                    expected_resolution: str | None = None) -> FeatureStatistics:
    """Reads a statistics ``.npz`` (ours, or TTUR / pytorch-fid files with ``mu`` and ``sigma``).

    A labelled file must match ``expected_network`` / ``expected_resolution`` when given; an
    unlabelled one (TTUR, pytorch-fid) is accepted with a logged warning.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a statistics file, or computed with another network or resolution.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"statistics file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path!r} is not a statistics .npz file ({error})") from error
    if "mu" not in contents or "sigma" not in contents:
        raise ValueError(f"statistics file {path!r} must hold 'mu' and 'sigma'. "
                         f"Received keys: {sorted(contents)}")
    mu = contents["mu"].astype(np.float64)
    sigma = contents["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"statistics file {path!r} holds mu {mu.shape} and sigma "
                         f"{sigma.shape}; expected (D,) and (D, D)")
    labels = {key: str(contents[key]) for key in ("network", "resolution", "data_key")
              if key in contents}
    features = contents.get("features")
    num_images = int(contents["num_images"]) if "num_images" in contents else (
        features.shape[0] if features is not None else 0)
    stats = FeatureStatistics(mu=mu, sigma=sigma, num_images=num_images,
                              network=labels.get("network", ""),
                              resolution=labels.get("resolution", ""),
                              data_key=labels.get("data_key", ""), features=features)
    if not stats.network:
        logging.warning("statistics file %r does not say which network computed it; "
                        "assuming the FID Inception (2015-12-05).", path)
    for field, expected in (("network", expected_network), ("resolution", expected_resolution)):
        actual = getattr(stats, field)
        if expected and actual and actual != expected:
            raise ValueError(
                f"statistics file {path!r} was computed with {field}={actual!r}, but "
                f"{field}={expected!r} is expected here; recompute it from the images. "
                f"Received: {field}={actual!r}"
            )
    return stats


def statistics_cache_path(cache_dir: str, data_key: str, resolution: str, network: str) -> str:
    """``<cache_dir>/fid_stats_<hash>.npz``, the hash over data key, resolution and network."""
    key = json.dumps({"data": data_key, "resolution": resolution, "network": network},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return os.path.join(cache_dir, f"fid_stats_{digest}.npz")


def cached_statistics(cache_dir: str | None, data_key: str, resolution: str, network: str,
                      compute) -> FeatureStatistics:
    """Loads the statistics for (data, resolution, network) from the cache or computes them.

    ``compute()`` returns a ``FeatureStatistics``; it is saved to the cache when ``cache_dir``
    is set. A cache file whose labels disagree with the key is recomputed.
    """
    if not cache_dir:
        return compute()
    path = statistics_cache_path(cache_dir, data_key, resolution, network)
    if os.path.isfile(path):
        try:
            stats = load_statistics(path, expected_network=network,
                                    expected_resolution=resolution)
            if stats.data_key == data_key:
                return stats
        except ValueError as error:
            logging.warning("ignoring cached statistics %r: %s", path, error)
    stats = compute()
    save_statistics(path, stats)
    return stats
