"""AlexNet identity + age-classifier training-step time of `AgeClassifierTrainer` (the frozen
nets IPCGAN uses), and its inference time (AlexNet + age head on ``--infer_batch`` images).

Builds the trainer from an `AgeClassifierConfig` with an in-memory face list (no file is
read) and times its ``train_step`` on synthetic batches. ``--batch_size`` is the global
batch, as in the trainer. ``--mixed_precision`` and ``--xla`` are accepted only once the
config has those settings. Prints figures and, as the last line, one JSON object (keys in
bench/_common.py). Never asserts timings.

The original's setting (227 x 227, batch 32):
    python bench/age_classifier_step.py --image_size=227 --batch_size=32
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facegan_tf.training.age_classifier import (  # noqa: E402
    AgeClassifierConfig,
    AgeClassifierTrainer,
    LabelledFaces,
)


def main(argv=None) -> dict:
    parser = _common.make_parser(__doc__.splitlines()[0], image_size=227, batch_size=32)
    parser.add_argument("--age_groups", type=int, default=5, help="Age groups.")
    parser.add_argument("--num_identities", type=int, default=2000, help="Identity classes.")
    parser.add_argument(
        "--conv_filters",
        type=lambda text: tuple(int(u) for u in text.split(",")),
        default=(96, 256, 384, 384, 256),
        help="AlexNet conv widths, comma separated.",
    )
    parser.add_argument("--fc_units", type=int, default=4096, help="AlexNet FC units.")
    args = _common.parse(parser, argv)
    run_dir = tempfile.mkdtemp(prefix="bench_age_classifier_")
    config = _common.config_with_scale(
        AgeClassifierConfig,
        args,
        input_size=args.image_size,
        batch_size=args.batch_size,
        age_groups=args.age_groups,
        conv_filters=args.conv_filters,
        fc_units=args.fc_units,
        checkpoint_dir=os.path.join(run_dir, "checkpoint"),
        seed=args.seed,
    )
    faces = LabelledFaces(
        paths=("unused.jpg",),
        groups=np.zeros((1,), np.int32),
        identities=np.zeros((1,), np.int32),
        identity_names=tuple(f"id{i}" for i in range(args.num_identities)),
    )
    trainer = AgeClassifierTrainer(config, faces=faces)
    replicas = trainer.strategy.num_replicas_in_sync
    rng = np.random.default_rng(args.seed)
    count, size = args.batch_size, args.image_size

    def batch():
        return _common.distributed(
            trainer.strategy,
            {
                "image": rng.uniform(-128, 128, (count, size, size, 3)).astype(np.float32),
                "group": rng.integers(0, args.age_groups, (count,)).astype(np.int32),
                "identity": rng.integers(0, args.num_identities, (count,)).astype(np.int32),
            },
        )

    timings = _common.time_steps(trainer.train_step, [batch(), batch()], args.steps, args.warmup)
    alexnet, age_head = trainer.alexnet, trainer.age_head
    infer = tf.function(
        lambda images: age_head(alexnet(images, training=False)["pool5"], training=False)
    )
    images = tf.constant(rng.uniform(-128, 128, (args.infer_batch, size, size, 3)), tf.float32)
    timings.update(_common.time_inference(infer, (images,), args.infer_repeats))
    return _common.report(
        "age_classifier",
        args,
        replicas,
        timings,
        global_batch=args.batch_size,
        num_identities=args.num_identities,
        fc_units=args.fc_units,
    )


if __name__ == "__main__":
    main()
