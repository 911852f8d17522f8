"""FID / KID callables for the GAN trainers, built on `facegan_tf.eval`.

`make_image_metrics` turns real image sets into callables ``metric(fake_uint8) -> {"fid",
"kid", "kid_std", "fid_sqrt"}``: the standard FID (Heusel et al., 2017) on the 2015-12-05
Inception ``pool_3`` features, KID (Binkowski et al., 2018) as mean and std over subsets, and
``fid_sqrt`` = sqrt(FID), the scale on which sualab reports its (non-standard) FID. Real and
fake images pass through the same uint8 quantisation and the network's own resize to 299.

When the FID weights file is missing, `make_image_metrics` returns ``(None, message)``: the
run continues without FID and the message says how to create the file.
"""

from __future__ import annotations

import math
import os

import numpy as np


def make_image_metrics(
    real_sets: dict[str, np.ndarray],
    weights_path: str = "",
    batch_size: int = 16,
    cache_dir: str = "",
    progress: bool = True,
    feature_model=None,
) -> tuple[dict | None, str]:
    """Builds one metric per real set.

    Args:
        real_sets: key -> real uint8 images [N, H, W, 3] (key ``""`` for an unconditional
            model, the class name for a conditional one).
        weights_path: FID weights file; empty: the default location (missing -> skipped).
            An explicit path that does not exist is an error.
        batch_size: images per feature-extraction batch.
        cache_dir: where real features are cached (``fid_real_<key>.npz``); empty: no cache.
        feature_model: a ready feature network (tests); overrides ``weights_path``.

    Returns:
        (metrics or None, note): ``note`` explains a skip or the sample-size caveat.
    """
    from facegan_tf.eval import frechet
    from facegan_tf.eval.features import extract_features

    if feature_model is None:
        from facegan_tf.eval.weights import load_fid_inception

        if weights_path and not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"--fid_weights file {weights_path!r} does not exist; create it with "
                "`python tools/fetch_fid_weights.py` or leave the flag empty to use the "
                "default location."
            )
        try:
            feature_model = load_fid_inception(weights_path or None)
        except FileNotFoundError as error:
            return None, f"FID/KID skipped: {error}"
    notes = []
    metrics = {}
    for key, images in real_sets.items():
        real_features = _real_features(
            key, images, feature_model, batch_size, cache_dir, progress, extract_features
        )
        mu_real, sigma_real = frechet.feature_statistics(real_features)
        if len(images) < 2048:
            notes.append(
                f"real set {key or 'all'!r} has {len(images)} images (< 2048 feature "
                "dimensions): FID is strongly biased upwards at this size; compare KID"
            )
        metrics[key] = _metric(
            feature_model,
            real_features,
            mu_real,
            sigma_real,
            batch_size,
            progress,
            frechet,
            extract_features,
        )
    return metrics, "; ".join(notes)


def _real_features(key, images, model, batch_size, cache_dir, progress, extract_features):
    path = os.path.join(cache_dir, f"fid_real_{key or 'all'}.npz") if cache_dir else ""
    if path and os.path.isfile(path):
        with np.load(path) as data:
            if int(data["num_images"]) == len(images):
                return data["features"]
    features = extract_features(
        model,
        images,
        batch_size=batch_size,
        progress=progress,
        label=f"FID real {key or 'all'}",
    )
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, features=features, num_images=np.asarray(len(images)))
        os.replace(tmp, path)
    return features


def _metric(
    model, real_features, mu_real, sigma_real, batch_size, progress, frechet, extract_features
):
    def metric(fake_uint8: np.ndarray) -> dict:
        features = extract_features(
            model, fake_uint8, batch_size=batch_size, progress=progress, label="FID fake"
        )
        mu, sigma = frechet.feature_statistics(features)
        fid = frechet.frechet_distance(mu, sigma, mu_real, sigma_real)
        kid, kid_std = frechet.kernel_inception_distance(real_features, features)
        return {
            "fid": float(fid),
            "fid_sqrt": math.sqrt(max(fid, 0.0)),
            "kid": float(kid),
            "kid_std": float(kid_std),
        }

    return metric
