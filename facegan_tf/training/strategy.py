"""Choosing a `tf.distribute` strategy by name."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")

# One MirroredStrategy per device set and process: every new MirroredStrategy numbers its
# collective ops from the same key, so two live ones over the same devices can collide
# ("Shape mismatch in the collective instance") when both run steps in one process.
_MIRRORED: dict[tuple[str, ...], tf.distribute.Strategy] = {}


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """Returns the strategy for ``name``.

    * ``default``: the default (single-device) strategy.
    * ``mirrored``: `MirroredStrategy` over every visible GPU, or over the logical CPUs when
      there is no GPU (more than one logical CPU exists only when configured, e.g. in tests);
      one shared instance per process.
    * ``multi_worker``: `MultiWorkerMirroredStrategy` configured from ``TF_CONFIG``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        key = tuple(d.name for d in devices)
        if key not in _MIRRORED:
            _MIRRORED[key] = tf.distribute.MirroredStrategy(list(key))
        return _MIRRORED[key]
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: strategy={name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, samples and logs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    spec = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in spec


def checkpoint_directory(checkpoint_dir: str, chief: bool) -> str:
    """Where this worker's `TrainingCheckpoint` lives: ``checkpoint_dir`` on the chief, a
    fresh private temporary folder elsewhere.

    Under MultiWorkerMirroredStrategy every worker takes part in each save; only the
    chief's copy is kept. A non-chief's copy goes to its own temporary folder (removed
    with `discard_worker_checkpoint` after each save), so ``checkpoint_dir`` receives
    exactly one checkpoint series even when workers share a file system.
    """
    if chief:
        return checkpoint_dir
    return tempfile.mkdtemp(prefix="facegan_worker_checkpoint_")


def discard_worker_checkpoint(directory: str, checkpoint_dir: str) -> None:
    """Removes a non-chief's temporary checkpoint folder (never ``checkpoint_dir``)."""
    if os.path.abspath(directory) != os.path.abspath(checkpoint_dir):
        shutil.rmtree(directory, ignore_errors=True)


def weights_fingerprint(models: dict) -> str:
    """SHA-256 of every model variable, in order of (model name, variable path), as
    little-endian bytes of its dtype; equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for name in sorted(models):
        for variable in sorted(models[name].weights, key=lambda v: v.path):
            value = np.ascontiguousarray(np.asarray(variable.numpy()))
            digest.update(f"{name}/{variable.path}:{value.dtype.str}:{value.shape}".encode())
            digest.update(value.astype(value.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()
