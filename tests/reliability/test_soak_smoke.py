"""bench/soak.py end to end with a few kills: nothing lost, nothing unloadable, exact resumes.

The first round kills its worker while it holds inside a checkpoint write (``--held_kills=1``)
with an earlier checkpoint listed, so every run has at least one kill during a write and the
next round resumes from it."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_soak_survives_a_few_kills():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", "soak.py"), "--kills=2", "--seed=1",
         "--warm=1", "--max_delay=2", "--write_fraction=0.67", "--held_kills=1",
         "--max_minutes=8"],
        capture_output=True, text=True, timeout=900,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, (figures, result.stderr[-2000:])
    assert figures["kills"] == 2
    assert figures["lost"] == figures["unloadable"] == figures["resume_mismatches"] == 0
    assert figures["held_kills"] == 1
    assert figures["kills_during_write"] >= 1
    # Round 1 leaves a complete checkpoint, so round 2 resumes from it.
    assert figures["runs_without_checkpoint"] == 1
    assert figures["resumes"] == 1
    assert figures["final_step"] >= 1
