"""Conditional-GAN training-step, first-step and generator-inference time of
`ConditionalGANTrainer` (``--model`` cgan, cdcgan, cwgan_gp or acgan).

Builds the trainer from a `ConditionalGANConfig` and times its ``train_step`` on synthetic
in-memory batches: for cgan/cdcgan/acgan one G and one D update; for cwgan_gp one critic
update plus a G update every ``--n_critic`` steps (the median then is a critic-only step when
n_critic > 2; ``step_times_s`` lists every step). Prints figures and, as the last line, one
JSON object (keys in bench/_common.py). Never asserts timings.

Example (cDCGAN at 64 x 64, batch 64, two classes):
    python bench/cgan_step.py --model=cdcgan --image_size=64 --batch_size=64
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.training.cgan import MODELS, ConditionalGANConfig, ConditionalGANTrainer  # noqa: E402


def main(argv=None) -> dict:
    parser = _common.make_parser(__doc__.splitlines()[0], image_size=64, batch_size=64)
    parser.add_argument("--model", choices=MODELS, default="cdcgan", help="Which GAN.")
    parser.add_argument("--num_classes", type=int, default=2, help="Number of classes.")
    parser.add_argument("--z_dim", type=int, default=100, help="Latent size.")
    parser.add_argument("--g_channels", type=int, default=64, help="Generator width.")
    parser.add_argument("--d_channels", type=int, default=64, help="Discriminator width.")
    parser.add_argument("--fc_channels", type=int, default=512, help="Generator FC channels.")
    parser.add_argument(
        "--mlp_g_units",
        type=lambda text: tuple(int(u) for u in text.split(",")),
        default=None,
        help="cgan generator hidden units, comma separated (default: the config's).",
    )
    parser.add_argument(
        "--mlp_d_units",
        type=lambda text: tuple(int(u) for u in text.split(",")),
        default=None,
        help="cgan discriminator hidden units, comma separated (default: the config's).",
    )
    parser.add_argument("--n_critic", type=int, default=5, help="cwgan_gp critic steps per G.")
    args = _common.parse(parser, argv)
    mlp = {}
    if args.mlp_g_units:
        mlp["mlp_g_units"] = args.mlp_g_units
    if args.mlp_d_units:
        mlp["mlp_d_units"] = args.mlp_d_units
    config = _common.config_with_scale(
        ConditionalGANConfig,
        args,
        model=args.model,
        save_dir=tempfile.mkdtemp(prefix="bench_cgan_"),
        num_classes=args.num_classes,
        image_size=args.image_size,
        batch_size=args.batch_size,
        z_dim=args.z_dim,
        g_channels=args.g_channels,
        d_channels=args.d_channels,
        fc_channels=args.fc_channels,
        n_critic=args.n_critic,
        seed=args.seed,
        **mlp,
    )
    trainer = ConditionalGANTrainer(config)
    rng = np.random.default_rng(args.seed)
    count, size = args.batch_size * trainer.replicas, args.image_size

    def batch():
        return _common.distributed(
            trainer.strategy,
            {
                "image": rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32),
                "label": rng.integers(0, args.num_classes, (count,)).astype(np.int32),
            },
        )

    timings = _common.time_steps(trainer.train_step, [batch(), batch()], args.steps, args.warmup)
    generator = trainer.models["generator"]
    infer = tf.function(lambda z, labels: generator(z, labels, training=False))
    z = tf.constant(rng.normal(size=(args.infer_batch, args.z_dim)), tf.float32)
    labels = tf.constant(rng.integers(0, args.num_classes, (args.infer_batch,)), tf.int32)
    timings.update(_common.time_inference(infer, (z, labels), args.infer_repeats))
    return _common.report(
        "cgan",
        args,
        trainer.replicas,
        timings,
        model=args.model,
        num_classes=args.num_classes,
        n_critic=args.n_critic,
    )


if __name__ == "__main__":
    main()
