"""FID feature extraction speed (images/s) of the Keras port on this machine.

  python bench/fid_features.py [--weights=PATH] [--images=32] [--batch_sizes=1,8,16]
                               [--sizes=64,299] [--frechet_samples=0]

Prints figures only. Reference figures (docs/fid.md, shared/specs/tf2_stack.md §12, 2-core
x86 CPU): NVIDIA's network as TorchScript (torch 2.13, 2 threads) ≈ 0.77 s per image
including warm-up (≈ 1.3 images/s); a plain TF 2.21 port ≈ 0.26 s per 299x299 image
(≈ 3.8 images/s); Fréchet distance at d = 2048, N = 6,000: symmetric eigh route 31.8 s,
scipy sqrtm 106.8 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.eval import features, frechet, weights  # noqa: E402

TORCHSCRIPT_SECONDS_PER_IMAGE = 0.77
TF_PORT_SECONDS_PER_IMAGE = 0.26


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def bench_features(model, num_images: int, batch_sizes: list[int], sizes: list[int]) -> None:
    rng = np.random.default_rng(0)
    print(f"threads: intra={tf.config.threading.get_intra_op_parallelism_threads()} "
          f"cpus={os.cpu_count()}")
    first = True
    for size in sizes:
        images = rng.integers(0, 256, size=(num_images, size, size, 3), dtype=np.uint8)
        for batch_size in batch_sizes:
            start = time.perf_counter()
            features.extract_features(model, images[:batch_size], batch_size, progress=False)
            warm = time.perf_counter() - start
            start = time.perf_counter()
            features.extract_features(model, images, batch_size, progress=False)
            seconds = time.perf_counter() - start
            rate = num_images / seconds
            note = " (includes tracing)" if first else ""
            first = False
            print(f"input {size}x{size} batch {batch_size:3d}: {rate:6.2f} images/s, "
                  f"{seconds / num_images:.3f} s/image; first batch {warm:.2f} s{note}")
    print(f"reference: TorchScript ≈ {1 / TORCHSCRIPT_SECONDS_PER_IMAGE:.2f} images/s "
          f"({TORCHSCRIPT_SECONDS_PER_IMAGE} s/image incl. warm-up); TF port measured "
          f"before ≈ {1 / TF_PORT_SECONDS_PER_IMAGE:.2f} images/s")


def bench_frechet(num_samples: int) -> None:
    rng = np.random.default_rng(1)
    real = rng.random((num_samples, 2048))
    fake = rng.random((num_samples, 2048)) ** 1.1
    stats = [frechet.feature_statistics(x) for x in (real, fake)]
    start = time.perf_counter()
    value = frechet.frechet_distance(*stats[0], *stats[1])
    print(f"Fréchet distance d=2048 N={num_samples}: {time.perf_counter() - start:.2f} s "
          f"(value {value:.6f}); reference eigh route 31.8 s, sqrtm 106.8 s at N=6000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="", help="weights .npz (default: search)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch_sizes", type=_ints, default=[1, 8, 16])
    parser.add_argument("--sizes", type=_ints, default=[64, 299])
    parser.add_argument("--frechet_samples", type=int, default=0,
                        help="also time the Fréchet distance at d=2048 with N samples")
    args = parser.parse_args()
    start = time.perf_counter()
    model = weights.load_fid_inception(args.weights or None)
    print(f"weights loaded in {time.perf_counter() - start:.2f} s")
    bench_features(model, args.images, args.batch_sizes, args.sizes)
    if args.frechet_samples:
        bench_frechet(args.frechet_samples)


if __name__ == "__main__":
    main()
