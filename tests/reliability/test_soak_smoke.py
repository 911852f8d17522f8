"""bench/soak.py end to end with a few kills: nothing lost, nothing unloadable, exact resumes."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_soak_survives_a_few_kills():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "soak.py"), "--kills=3", "--seed=1",
         "--warm=1", "--max_delay=2", "--write_fraction=0.67", "--max_minutes=8"],
        capture_output=True, text=True, timeout=900,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, (figures, result.stderr[-2000:])
    assert figures["kills"] == 3
    assert figures["lost"] == figures["unloadable"] == figures["resume_mismatches"] == 0
