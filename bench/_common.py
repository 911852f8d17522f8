"""Pieces shared by the bench scripts: flags, TensorFlow threading, timing, peak RSS and the
final JSON line.

Every bench script builds the real trainer of its family from its config, feeds its
``train_step`` synthetic in-memory batches (so no file reading or decoding is timed) and
prints, as its last line, one JSON object with at least the keys of `REQUIRED_KEYS`:

* ``first_step_s``: wall time of the first ``train_step`` call (tracing, graph optimisation,
  kernel selection and the first execution);
* ``step_s``: median wall time of ``--steps`` calls after ``--warmup`` untimed ones;
  ``step_min_s`` is their minimum (closest to the uncontended time on a busy machine);
* ``infer_s``: median wall time of one generator call in inference mode on
  ``--infer_batch`` images (a traced function, after one untimed call);
* ``images_per_s``: global batch / ``step_s``;
* ``peak_rss_mb``: the process' peak resident set size (``getrusage`` ``ru_maxrss``);
* ``step_cpu_s``, ``first_step_cpu_s``, ``infer_cpu_s``: the process' CPU time (all threads)
  of the same calls. On a machine shared with other work the wall times grow with the load
  while the CPU times stay close to their quiet values; on an idle machine with C cores the
  wall time of a step is at least ``step_cpu_s / C``.

Scripts run from a source checkout (``python bench/<name>.py``); nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

#: Keys every bench script's JSON line carries.
REQUIRED_KEYS = (
    "bench",
    "step_s",
    "step_min_s",
    "first_step_s",
    "infer_s",
    "images_per_s",
    "peak_rss_mb",
    "image_size",
    "batch_size",
    "replicas",
    "strategy",
    "mixed_precision",
    "xla",
)


def _to_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false. Received: {text!r}")


def add_bool(parser: argparse.ArgumentParser, name: str, default: bool, help_text: str) -> None:
    """``--name``, ``--name=true|false`` and ``--noname`` (absl style)."""
    parser.add_argument(
        f"--{name}", type=_to_bool, nargs="?", const=True, default=default, help=help_text
    )
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def make_parser(
    description: str, image_size: int, batch_size: int, steps: int = 10
) -> argparse.ArgumentParser:
    """The flags every bench script shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--image_size", "--size", type=int, default=image_size, help="Square image side."
    )
    parser.add_argument(
        "--batch_size",
        "--batch",
        type=int,
        default=batch_size,
        help="Per-replica batch size (the global batch is this times the replicas).",
    )
    parser.add_argument("--steps", type=int, default=steps, help="Timed training steps.")
    parser.add_argument(
        "--warmup", type=int, default=2, help="Untimed steps after the first one."
    )
    parser.add_argument(
        "--infer_repeats", type=int, default=10, help="Timed generator inference calls."
    )
    parser.add_argument(
        "--infer_batch", type=int, default=1, help="Images per timed inference call."
    )
    parser.add_argument(
        "--strategy",
        choices=("default", "mirrored"),
        default="default",
        help="tf.distribute strategy (mirrored: every GPU, else every logical CPU).",
    )
    add_bool(parser, "mixed_precision", False, "float16 compute, float32 variables.")
    add_bool(parser, "xla", False, "jit-compile the trainer's forward/backward passes.")
    parser.add_argument(
        "--cpu_devices",
        type=int,
        default=1,
        help="Split the CPU into this many logical devices (for --strategy=mirrored without "
        "a GPU).",
    )
    parser.add_argument(
        "--intra_op_threads", type=int, default=0, help="TensorFlow intra-op threads (0: auto)."
    )
    parser.add_argument(
        "--inter_op_threads", type=int, default=0, help="TensorFlow inter-op threads (0: auto)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic data.")
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses the flags, checks them and configures TensorFlow (before any op runs)."""
    args = parser.parse_args(argv)
    for name in ("image_size", "batch_size", "steps", "infer_repeats", "infer_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1. Received: {name}={getattr(args, name)}")
    for name in ("warmup", "intra_op_threads", "inter_op_threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0. Received: {name}={getattr(args, name)}")
    if args.cpu_devices < 1:
        parser.error(f"--cpu_devices must be >= 1. Received: cpu_devices={args.cpu_devices}")
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    if args.cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices
        )
    return args


def config_with_scale(config_class, args: argparse.Namespace, **values):
    """``config_class(**values)`` plus ``strategy``, ``mixed_precision`` and ``xla`` from the
    flags, each only if the config has that field. Asking for a setting the trainer does not
    have is an error (exit 2) rather than a silent float32 / non-XLA run."""
    fields = {field.name for field in dataclasses.fields(config_class)}
    for name in ("strategy", "mixed_precision", "xla"):
        wanted = getattr(args, name)
        if name in fields:
            values[name] = wanted
        elif wanted not in (False, "default"):
            fail(f"{config_class.__name__} has no `{name}` setting. Received: {name}={wanted}")
    return config_class(**values)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def distributed(strategy: tf.distribute.Strategy, batch: dict):
    """One global batch (a dict of NumPy arrays) split over ``strategy``'s replicas, as the
    trainers receive it from ``experimental_distribute_dataset``."""
    dataset = tf.data.Dataset.from_tensors(batch)
    return next(iter(strategy.experimental_distribute_dataset(dataset)))


def _sync(values) -> None:
    """Waits for a step's results (a dict of tensors or per-replica values)."""
    for value in tf.nest.flatten(values, expand_composites=True):
        if hasattr(value, "numpy"):
            value.numpy()


def time_steps(step: Callable, batches: list, steps: int, warmup: int) -> dict:
    """First-call time, then ``warmup`` untimed calls, then the median and minimum of ``steps``
    timed calls of ``step(batch)``, cycling through ``batches``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    _sync(step(batches[0]))
    first, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    for index in range(warmup):
        _sync(step(batches[(index + 1) % len(batches)]))
    times, cpu_times = [], []
    for index in range(steps):
        batch = batches[index % len(batches)]
        start, start_cpu = time.perf_counter(), time.process_time()
        _sync(step(batch))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
    return {
        "first_step_s": first,
        "step_s": statistics.median(times),
        "step_min_s": min(times),
        "step_times_s": [round(t, 4) for t in times],
        "first_step_cpu_s": first_cpu,
        "step_cpu_s": statistics.median(cpu_times),
    }


def time_inference(call: Callable, inputs: tuple, repeats: int) -> dict:
    """Median and minimum wall time (and median CPU time) of ``call(*inputs)`` after one
    untimed call."""
    _sync(call(*inputs))
    times, cpu_times = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        _sync(call(*inputs))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
    return {
        "infer_s": statistics.median(times),
        "infer_min_s": min(times),
        "infer_cpu_s": statistics.median(cpu_times),
    }


def onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def report(
    name: str,
    args: argparse.Namespace,
    replicas: int,
    timings: dict,
    global_batch: int | None = None,
    **extra,
) -> dict:
    """Prints a readable summary and, as the last line, the JSON object; returns it.

    ``global_batch`` defaults to ``batch_size * replicas`` (trainers whose ``batch_size`` is
    per replica); trainers whose ``batch_size`` is the global batch pass it.
    """
    if global_batch is None:
        global_batch = args.batch_size * replicas
    result = {
        "bench": name,
        **timings,
        "images_per_s": global_batch / timings["step_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "global_batch": global_batch,
        "replicas": replicas,
        "strategy": args.strategy,
        "mixed_precision": args.mixed_precision,
        "xla": args.xla,
        "steps": args.steps,
        "warmup": args.warmup,
        "infer_batch": args.infer_batch,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": onednn_enabled(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        **extra,
    }
    print(
        f"{name}: first step {result['first_step_s']:.2f} s, median step {result['step_s']:.3f} s "
        f"(min {result['step_min_s']:.3f} s), {result['images_per_s']:.2f} images/s, "
        f"inference {result['infer_s']:.3f} s per {args.infer_batch} image(s), "
        f"peak RSS {result['peak_rss_mb']:.0f} MiB, load {result['load_avg_1min']:.2f}"
    )
    print(json.dumps(result))
    return result
