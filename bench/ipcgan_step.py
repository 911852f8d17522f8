"""IPCGAN training-step, first-step and generator-inference time of `IPCGANTrainer`.

Builds the trainer from an `IPCGANConfig` with its frozen AlexNet (identity features) and
age classifier (randomly initialised here: their weights do not change the time) and times
its ``train_step`` (one D update, one G update through the frozen nets) on synthetic
in-memory batches. ``--batch_size`` is the global batch, as in the trainer. Prints figures
and, as the last line, one JSON object (keys in bench/_common.py). Never asserts timings.

The original's setting (128 x 128, batch 32, AlexNet input 227):
    python bench/ipcgan_step.py --image_size=128 --batch_size=32
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.data.ipcgan_lists import condition_batch  # noqa: E402
from facegan_tf.networks.ipcgan import MEAN_RGB  # noqa: E402
from facegan_tf.training.ipcgan import IPCGANConfig, IPCGANTrainer  # noqa: E402


def main(argv=None) -> dict:
    parser = _common.make_parser(__doc__.splitlines()[0], image_size=128, batch_size=32)
    parser.add_argument("--g_base_filters", type=int, default=32, help="Generator width.")
    parser.add_argument("--num_blocks", type=int, default=6, help="Generator residual blocks.")
    parser.add_argument("--d_base_filters", type=int, default=64, help="Discriminator width.")
    parser.add_argument("--age_groups", type=int, default=5, help="Age groups.")
    parser.add_argument("--alexnet_input_size", type=int, default=227, help="AlexNet input side.")
    parser.add_argument(
        "--alexnet_conv_filters",
        type=lambda text: tuple(int(u) for u in text.split(",")),
        default=(96, 256, 384, 384, 256),
        help="AlexNet conv widths, comma separated.",
    )
    parser.add_argument("--alexnet_fc_units", type=int, default=4096, help="AlexNet FC units.")
    args = _common.parse(parser, argv)
    logging.getLogger("facegan_tf").setLevel(logging.ERROR)
    run_dir = tempfile.mkdtemp(prefix="bench_ipcgan_")
    config = _common.config_with_scale(
        IPCGANConfig,
        args,
        image_size=args.image_size,
        batch_size=args.batch_size,
        g_base_filters=args.g_base_filters,
        num_blocks=args.num_blocks,
        d_base_filters=args.d_base_filters,
        age_groups=args.age_groups,
        alexnet_input_size=args.alexnet_input_size,
        alexnet_conv_filters=args.alexnet_conv_filters,
        alexnet_fc_units=args.alexnet_fc_units,
        alexnet_pretrained_model="",
        age_pretrained_model="",
        checkpoint_dir=os.path.join(run_dir, "checkpoint"),
        sample_dir=os.path.join(run_dir, "sample"),
        seed=args.seed,
    )
    trainer = IPCGANTrainer(config)
    rng = np.random.default_rng(args.seed)
    count, size, alex = args.batch_size, args.image_size, args.alexnet_input_size
    mean = np.asarray(MEAN_RGB, np.float32)

    def batch():
        groups = rng.integers(0, args.age_groups, (2,))
        return _common.distributed(
            trainer.strategy,
            {
                "source": rng.uniform(0, 255, (count, size, size, 3)).astype(np.float32) - mean,
                "source_alexnet": rng.uniform(0, 255, (count, alex, alex, 3)).astype(np.float32)
                - mean,
                "real": rng.uniform(-1, 1, (count, size, size, 3)).astype(np.float32),
                "true_group": np.full((count,), groups[0], np.int32),
                "false_group": np.full((count,), (groups[0] + 1) % args.age_groups, np.int32),
            },
        )

    timings = _common.time_steps(trainer.train_step, [batch(), batch()], args.steps, args.warmup)
    generator = trainer.models["generator"]
    infer = tf.function(lambda images, condition: generator([images, condition], training=False))
    images = tf.constant(
        rng.uniform(0, 255, (args.infer_batch, size, size, 3)) - mean, tf.float32
    )
    condition = condition_batch(np.zeros((args.infer_batch,), np.int32), args.age_groups, size)
    timings.update(_common.time_inference(infer, (images, condition), args.infer_repeats))
    return _common.report(
        "ipcgan",
        args,
        trainer.replicas,
        timings,
        global_batch=args.batch_size,
        g_base_filters=args.g_base_filters,
        num_blocks=args.num_blocks,
        d_base_filters=args.d_base_filters,
        alexnet_input_size=alex,
    )


if __name__ == "__main__":
    main()
