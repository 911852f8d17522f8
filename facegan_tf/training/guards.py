"""Stopping a run safely: non-finite losses and Ctrl-C.

A trainer checks the losses of every step with `check_finite`; a NaN or infinite value
raises `NonFiniteLossError` before anything of that step is saved, so the last checkpoint
on disk is the last good state. `save_on_interrupt` turns Ctrl-C (SIGINT) into a final
checkpoint of the current state and a `TrainingInterrupted` that names the step and the
checkpoint, which the command-line tools print as one line (exit code 130).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Mapping


class NonFiniteLossError(ValueError):
    """A loss became NaN or infinite; the run stops and keeps its last good checkpoint."""

    def __init__(self, step: int, names: list[str], checkpoint: str | None):
        self.step = step
        self.names = names
        self.checkpoint = checkpoint
        kept = (
            f"the last good checkpoint is {checkpoint!r}"
            if checkpoint
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"Non-finite loss at step {step} ({', '.join(names)}); training stopped and "
            f"{kept}. Lower the learning rate or check the data, then resume with "
            "--continue_train."
        )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the current state was saved."""

    def __init__(self, step: int, checkpoint: str | None):
        self.step = step
        self.checkpoint = checkpoint
        where = f"saved {checkpoint!r}" if checkpoint else "nothing was saved"
        super().__init__(
            f"interrupted at step {step}; {where}. Resume with --continue_train."
        )


def non_finite_names(losses: Mapping[str, object]) -> list[str]:
    """Names of the values of ``losses`` that are NaN or infinite."""
    return [name for name, value in losses.items() if not math.isfinite(float(value))]


def check_finite(
    step: int,
    losses: Mapping[str, object],
    checkpoint: str | None | Callable[[], str | None],
) -> None:
    """Raises `NonFiniteLossError` if any loss value is NaN or infinite.

    Args:
        step: the step that produced ``losses``.
        losses: name → scalar (Python number, NumPy or eager tensor).
        checkpoint: the latest checkpoint on disk, named in the message, or a callable
            returning it (called only when a loss is not finite, so a loop can pass
            ``lambda: manager.latest`` without reading the folder every step).
    """
    names = non_finite_names(losses)
    if names:
        raise NonFiniteLossError(step, names, checkpoint() if callable(checkpoint) else checkpoint)


@contextlib.contextmanager
def save_on_interrupt(save: Callable[[], str | None], step: Callable[[], int]):
    """On KeyboardInterrupt inside the block, calls ``save()`` and raises
    `TrainingInterrupted` with the step and the path ``save`` returned.

    A second Ctrl-C while saving is not caught: TensorFlow's checkpoint writes leave the
    previous checkpoint the latest one until a new one is complete.
    """
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        path = save()
        raise TrainingInterrupted(int(step()), path) from None


class InterruptRequest:
    """Whether Ctrl-C was pressed inside a `deferred_interrupt` block."""

    def __init__(self):
        self.requested = False

    def raise_if_requested(self) -> None:
        """Raises KeyboardInterrupt if Ctrl-C was pressed since the block started."""
        if self.requested:
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_interrupt():
    """Defers the first Ctrl-C (SIGINT) to the loop's next safe point.

    Inside the block the first SIGINT only sets ``request.requested``; the training loop
    calls ``request.raise_if_requested()`` between steps, where step counter, weights,
    optimiser state and data position agree, so the checkpoint `save_on_interrupt` writes
    resumes exactly. The first SIGINT also restores the previous handler: a second Ctrl-C
    raises at once. Outside the main thread (where handlers cannot be installed) SIGINT
    keeps its normal behaviour, and an ignored SIGINT stays ignored.
    """
    request = InterruptRequest()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is None or previous == signal.SIG_IGN:
        yield request  # not the main thread, a handler set outside Python, or ignored
        return

    def handler(signum, frame):
        request.requested = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def interruptible(save: Callable[[], str | None], step: Callable[[], int]):
    """`save_on_interrupt` around `deferred_interrupt`: yields the `InterruptRequest` the
    loop polls between steps; Ctrl-C then saves that consistent state and raises
    `TrainingInterrupted`. A second Ctrl-C (e.g. while saving) interrupts at once."""
    with save_on_interrupt(save, step), deferred_interrupt() as request:
        yield request
