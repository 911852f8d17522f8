"""Test-session setup: split the CPU into 2 logical devices before TensorFlow starts.

MirroredStrategy tests need more than one device; logical devices must be configured before
the TF runtime initialises, so this runs at import time of the first conftest.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:
    pass

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")


def run_tool(tool: str, *args: str, cwd: str | None = None, timeout: int = 600):
    """Runs ``python tools/<tool>.py args...`` (from the repository root unless ``cwd`` is
    given) and returns the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    cwd = cwd or REPO_ROOT
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", f"{tool}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_tool_in_process(tool: str, *args: str, cwd: str | None = None, timeout: int = 600):
    """Runs ``facegan_tf.cli.<tool>``'s ``run()`` with ``args`` inside the test process (a
    fresh flag parse, output and log records captured; `tests.cli_runner.run_cli`).
    ``timeout`` is accepted for the same call signature as `run_tool` and not enforced."""
    from tests.cli_runner import run_cli

    return run_cli(tool, *args, cwd=cwd, capture_logs=True)


@pytest.fixture(scope="session")
def tool():
    """A tool run in-process (no interpreter or TensorFlow start-up per call)."""
    return run_tool_in_process


@pytest.fixture(scope="session")
def subprocess_tool():
    """A tool run as ``python tools/<tool>.py`` in a fresh interpreter."""
    return run_tool
