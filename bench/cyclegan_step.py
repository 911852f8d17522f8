"""CycleGAN training-step, first-step and generator-inference time of `CycleGANTrainer`.

Builds the trainer from a `CycleGANConfig` and times its ``train_step`` on synthetic
in-memory batches (G update on both generators, image pool, D update on both
discriminators). Prints figures and, as the last line, one JSON object (keys in
bench/_common.py). Never asserts timings.

The reference setting (ResNet-9, ngf 64, 128 x 128, batch 1, no identity loss):
    python bench/cyclegan_step.py --image_size=128 --ngf=64 --num_blocks=9 --batch_size=1
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer  # noqa: E402


def main(argv=None) -> dict:
    parser = _common.make_parser(__doc__.splitlines()[0], image_size=128, batch_size=1)
    parser.add_argument("--ngf", type=int, default=64, help="Generator width.")
    parser.add_argument("--ndf", type=int, default=64, help="Discriminator width.")
    parser.add_argument("--num_blocks", type=int, default=9, help="Residual blocks.")
    parser.add_argument(
        "--identity_lambda", type=float, default=0.0, help="Identity loss weight (0: off)."
    )
    _common.add_bool(
        parser, "grappler", True, "Run TensorFlow's graph optimiser (the meta optimizer)."
    )
    args = _common.parse(parser, argv)
    if not args.grappler:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    size = args.image_size
    run_dir = tempfile.mkdtemp(prefix="bench_cyclegan_")
    config = _common.config_with_scale(
        CycleGANConfig,
        args,
        fine_size=size,
        load_size=size,
        ngf=args.ngf,
        ndf=args.ndf,
        num_blocks=args.num_blocks,
        batch_size=args.batch_size,
        identity_lambda=args.identity_lambda,
        checkpoint_dir=os.path.join(run_dir, "checkpoint"),
        log_dir=os.path.join(run_dir, "logs"),
        sample_dir=os.path.join(run_dir, "sample"),
    )
    trainer = CycleGANTrainer(config)
    rng = np.random.default_rng(args.seed)
    shape = (args.batch_size * trainer.replicas, size, size, 3)

    def batch():
        return _common.distributed(
            trainer.strategy,
            {
                "real_a": rng.uniform(-1, 1, shape).astype(np.float32),
                "real_b": rng.uniform(-1, 1, shape).astype(np.float32),
            },
        )

    timings = _common.time_steps(trainer.train_step, [batch(), batch()], args.steps, args.warmup)
    generator = trainer.models["generator_a2b"]
    infer = tf.function(lambda images: generator(images, training=False))
    images = tf.constant(rng.uniform(-1, 1, (args.infer_batch, size, size, 3)), tf.float32)
    timings.update(_common.time_inference(infer, (images,), args.infer_repeats))
    return _common.report(
        "cyclegan",
        args,
        trainer.replicas,
        timings,
        ngf=args.ngf,
        ndf=args.ndf,
        num_blocks=args.num_blocks,
        identity_lambda=args.identity_lambda,
        grappler=args.grappler,
    )


if __name__ == "__main__":
    main()
