"""CycleGAN step time, first-step time and generator inference time on this machine.

Prints figures and, as its last line, one JSON object
``{"step_s", "first_step_s", "infer_s", ...}``. Never asserts timings.

Example (the reference setting: ResNet-9, ngf 64, 128 x 128, batch 1, no identity loss):
    python bench/cyclegan_step.py --image_size=128 --ngf=64 --steps=10
"""

import json
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from facegan_tf.training.cyclegan import CycleGANConfig, CycleGANTrainer  # noqa: E402

flags.DEFINE_integer("image_size", 128, "Square image side.")
flags.DEFINE_integer("ngf", 64, "Generator width.")
flags.DEFINE_integer("ndf", 64, "Discriminator width.")
flags.DEFINE_integer("num_blocks", 9, "Residual blocks.")
flags.DEFINE_integer("batch_size", 1, "Batch size.")
flags.DEFINE_integer("steps", 10, "Timed steps after the first one.")
flags.DEFINE_integer("infer_repeats", 10, "Timed generator calls.")
flags.DEFINE_float("identity_lambda", 0.0, "Identity loss weight (0 = off).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored"], "tf.distribute strategy.")
flags.DEFINE_bool("xla", False, "Compile the per-replica passes with XLA.")
flags.DEFINE_bool("grappler", True, "Run TensorFlow's graph optimiser (meta optimizer).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if not FLAGS.grappler:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    size = FLAGS.image_size
    config = CycleGANConfig(
        fine_size=size,
        load_size=size,
        ngf=FLAGS.ngf,
        ndf=FLAGS.ndf,
        num_blocks=FLAGS.num_blocks,
        batch_size=FLAGS.batch_size,
        identity_lambda=FLAGS.identity_lambda,
        strategy=FLAGS.strategy,
        checkpoint_dir=tempfile.mkdtemp(),
        log_dir=tempfile.mkdtemp(),
    )
    trainer = CycleGANTrainer(config)
    rng = np.random.default_rng(0)

    def batch():
        shape = (FLAGS.batch_size * trainer.replicas, size, size, 3)
        data = {
            "real_a": rng.uniform(-1, 1, shape).astype(np.float32),
            "real_b": rng.uniform(-1, 1, shape).astype(np.float32),
        }
        dataset = tf.data.Dataset.from_tensors(data)
        return next(iter(trainer.strategy.experimental_distribute_dataset(dataset)))

    start = time.perf_counter()
    float(trainer.train_step(batch())["g_loss"])
    first_step = time.perf_counter() - start
    times = []
    for _ in range(FLAGS.steps):
        data = batch()
        start = time.perf_counter()
        float(trainer.train_step(data)["g_loss"])
        times.append(time.perf_counter() - start)

    generator = trainer.models["generator_a2b"]
    infer = tf.function(lambda x: generator(x, training=False))
    image = tf.constant(rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32))
    infer(image).numpy()
    infer_times = []
    for _ in range(FLAGS.infer_repeats):
        start = time.perf_counter()
        infer(image).numpy()
        infer_times.append(time.perf_counter() - start)

    result = {
        "step_s": statistics.median(times),
        "first_step_s": first_step,
        "infer_s": statistics.median(infer_times),
        "images_per_s": FLAGS.batch_size * trainer.replicas / statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "image_size": size,
        "ngf": FLAGS.ngf,
        "num_blocks": FLAGS.num_blocks,
        "batch_size": FLAGS.batch_size,
        "replicas": trainer.replicas,
        "tensorflow": tf.__version__,
    }
    print(
        f"first step {first_step:.2f} s, median step {result['step_s']:.3f} s, "
        f"generator inference {result['infer_s']:.3f} s/image"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
