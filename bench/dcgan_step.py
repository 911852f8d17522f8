"""DCGAN training-step, first-step and generator-inference time of `DCGANTrainer`.

Builds the trainer from a `DCGANConfig` (sualab widths by default) and times its
``train_step`` (one D update and ``g_steps_per_d`` G updates) on synthetic in-memory batches.
Prints figures and, as the last line, one JSON object (keys in bench/_common.py). Never
asserts timings.

The reference setting (sualab: 64 x 64, batch 64):
    python bench/dcgan_step.py --image_size=64 --batch_size=64
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.training.dcgan import DCGANConfig, DCGANTrainer  # noqa: E402


def main(argv=None) -> dict:
    parser = _common.make_parser(__doc__.splitlines()[0], image_size=64, batch_size=64)
    parser.add_argument("--z_dim", type=int, default=100, help="Latent size.")
    parser.add_argument("--fc_channels", type=int, default=512, help="G_FC_layer_channel.")
    parser.add_argument("--g_channels", type=int, default=64, help="G_channel.")
    parser.add_argument("--d_channels", type=int, default=64, help="D_channel.")
    args = _common.parse(parser, argv)
    config = _common.config_with_scale(
        DCGANConfig,
        args,
        save_dir=tempfile.mkdtemp(prefix="bench_dcgan_"),
        image_size=args.image_size,
        batch_size=args.batch_size,
        z_dim=args.z_dim,
        fc_channels=args.fc_channels,
        g_channels=args.g_channels,
        d_channels=args.d_channels,
        seed=args.seed,
    )
    trainer = DCGANTrainer(config)
    rng = np.random.default_rng(args.seed)
    count, size = args.batch_size * trainer.replicas, args.image_size

    def batch():
        return _common.distributed(
            trainer.strategy,
            {
                "image": rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32),
                "label": np.zeros((count,), np.int32),
            },
        )

    timings = _common.time_steps(trainer.train_step, [batch(), batch()], args.steps, args.warmup)
    generator = trainer.models["generator"]
    infer = tf.function(lambda z: generator(z, training=False))
    z = tf.constant(rng.uniform(-1, 1, (args.infer_batch, args.z_dim)), tf.float32)
    timings.update(_common.time_inference(infer, (z,), args.infer_repeats))
    return _common.report(
        "dcgan",
        args,
        trainer.replicas,
        timings,
        z_dim=args.z_dim,
        g_channels=args.g_channels,
        d_channels=args.d_channels,
        g_steps_per_d=config.g_steps_per_d,
    )


if __name__ == "__main__":
    main()
