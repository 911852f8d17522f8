"""A dependency-free progress bar for long loops (training, feature extraction, testing)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Prints ``label [####    ] 12/40 30% 3.1 it/s eta 9s | key=value ...``.

    On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed at
    most every ``min_interval_s`` seconds and at the end.

    Args:
        total: number of steps, or None when unknown.
        label: text in front of the bar.
        unit: name of one step in the rate ("it", "img").
        stream: where to write (default stderr).
        min_interval_s: minimum seconds between two printed lines when not on a terminal.
    """

    def __init__(
        self,
        total: int | None,
        label: str = "",
        unit: str = "it",
        stream=None,
        min_interval_s: float = 10.0,
        enabled: bool = True,
    ):
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.enabled = enabled
        self.count = 0
        self._start = time.perf_counter()
        self._last_print = -float("inf")
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, steps: int = 1, **values) -> None:
        self.count += steps
        now = time.perf_counter()
        finished = self.total is not None and self.count >= self.total
        if not self.enabled:
            return
        if self._tty or finished or now - self._last_print >= self.min_interval_s:
            self._last_print = now
            self._write(self.render(now, values), final=finished)

    def render(self, now: float | None = None, values: dict | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.count / elapsed
        parts = [self.label] if self.label else []
        if self.total:
            fraction = min(self.count / self.total, 1.0)
            filled = int(20 * fraction)
            parts.append("[" + "#" * filled + " " * (20 - filled) + "]")
            parts.append(f"{self.count}/{self.total} {fraction:4.0%}")
            remaining = (self.total - self.count) / rate if rate > 0 else 0.0
            parts.append(f"{rate:.2f} {self.unit}/s eta {_format_seconds(remaining)}")
        else:
            parts.append(f"{self.count} {rate:.2f} {self.unit}/s")
        if values:
            parts.append("| " + " ".join(f"{k}={_format_value(v)}" for k, v in values.items()))
        return " ".join(parts)

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _write(self, line: str, final: bool) -> None:
        if self._tty:
            self.stream.write("\r\x1b[2K" + line)
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
