"""One training step of every family at its default size, with TensorFlow's oneDNN kernels
forced on and forced off.

TensorFlow turns oneDNN on by default only on x86 CPUs with AVX-512, so each setting runs in
its own process with ``TF_ENABLE_ONEDNN_OPTS`` set: both paths are covered on every machine.
A TensorFlow abort (e.g. the oneDNN convolution check failure of docs/troubleshooting.md)
shows here as a negative return code and a missing family.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.reliability.one_step_per_family import FAMILIES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tests", "reliability", "one_step_per_family.py")


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["1", "0"], ids=["onednn_on", "onednn_off"])
def test_one_step_of_every_family_at_default_size(onednn, tmp_path):
    env = dict(
        os.environ,
        TF_ENABLE_ONEDNN_OPTS=onednn,
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p),
        TMPDIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, SCRIPT], cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=1500,
    )
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    done = [report["family"] for report in reports]
    assert result.returncode == 0, (
        f"exit {result.returncode} after {done}; stderr tail:\n{result.stderr[-3000:]}"
    )
    assert done == list(FAMILIES)
    for report in reports:
        losses = report["losses"]
        assert losses, report
        assert all(math.isfinite(value) for value in losses.values()), report
