"""Scalars to TensorBoard and to a JSON-lines file, under the same names."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf


class StatsWriter:
    """Writes scalars (and optionally images) for one run.

    ``<log_dir>/stats.jsonl`` gets one JSON object per `write` call:
    ``{"step": ..., "time": ..., "<tag>": value, ...}``; TensorBoard event files go to
    ``log_dir`` as well.

    Args:
        log_dir: the folder; created if needed.
        enabled: False on non-chief workers (nothing is written).
    """

    def __init__(self, log_dir: str, enabled: bool = True):
        self.log_dir = log_dir
        self.enabled = enabled
        self._summary = None
        self._jsonl = None
        if enabled:
            os.makedirs(log_dir, exist_ok=True)
            self._summary = tf.summary.create_file_writer(log_dir)
            self._jsonl = open(os.path.join(log_dir, "stats.jsonl"), "a", encoding="utf-8")

    def write(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "time": time.time()}
        with self._summary.as_default(step=int(step)):
            for tag, value in scalars.items():
                value = float(value)
                tf.summary.scalar(tag, value)
                record[tag] = value
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def write_images(self, step: int, images: dict, max_outputs: int = 4) -> None:
        """Image summaries; values are [B, H, W, C] arrays in [-1, 1]."""
        if not self.enabled:
            return
        with self._summary.as_default(step=int(step)):
            for tag, batch in images.items():
                batch = (np.clip(np.asarray(batch, np.float32), -1.0, 1.0) + 1.0) / 2.0
                tf.summary.image(tag, batch, max_outputs=max_outputs)
        self._summary.flush()

    def flush(self) -> None:
        if self.enabled:
            self._summary.flush()
            self._jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self._summary.close()
            self._jsonl.close()
            self.enabled = False


def read_stats(log_dir: str) -> list[dict]:
    """The records of ``<log_dir>/stats.jsonl`` (an empty list when there is none)."""
    path = os.path.join(log_dir, "stats.jsonl")
    if not os.path.isfile(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
    return records
