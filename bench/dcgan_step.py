"""DCGAN training-step time at batch 64, 64 x 64, sualab widths (1 D + 2 G Adam updates).

Usage: python bench/dcgan_step.py [--steps=10] [--batch_size=64]
Prints figures only; no timing is asserted.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    config = DCGANConfig(save_dir=tempfile.mkdtemp(), batch_size=args.batch_size)
    trainer = DCGANTrainer(config)
    images = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, 64, 64, 3))
    batch = {
        "image": tf.constant(images, tf.float32),
        "label": tf.zeros((args.batch_size,), tf.int32),
    }
    start = time.perf_counter()
    trainer.train_step(batch)["d_loss"].numpy()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.train_step(batch)["d_loss"].numpy()
        times.append(time.perf_counter() - start)
    times = np.array(times)
    print(f"devices: {[d.name for d in tf.config.list_logical_devices()]}")
    print(f"first step (trace + run): {first:.2f} s")
    print(
        f"step time over {args.steps} steps: median {np.median(times) * 1000:.0f} ms, "
        f"min {times.min() * 1000:.0f} ms; {args.batch_size / np.median(times):.1f} images/s"
    )
    print(
        "sualab epoch (1,093 steps) at this speed: "
        f"{1093 * np.median(times) / 60:.1f} min; 100 epochs: "
        f"{109300 * np.median(times) / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
