"""Each bench script runs one tiny step and ends with the documented JSON line.

The scripts run as subprocesses, started together so the TensorFlow imports overlap. Only
the output format is checked: no timing is asserted.
"""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--steps=1", "--warmup=0", "--infer_repeats=1"]
RUNS = {
    "cyclegan": (
        "cyclegan_step",
        ["--image_size=16", "--batch_size=1", "--ngf=4", "--ndf=4", "--num_blocks=1"],
    ),
    "dcgan_mirrored": (
        "dcgan_step",
        [
            "--image_size=8",
            "--batch_size=1",
            "--g_channels=4",
            "--d_channels=4",
            "--fc_channels=8",
            "--z_dim=4",
            "--strategy=mirrored",
            "--cpu_devices=2",
        ],
    ),
    "cgan": (
        "cgan_step",
        ["--model=acgan", "--image_size=8", "--batch_size=2", "--g_channels=4",
         "--d_channels=4", "--fc_channels=8", "--z_dim=4"],
    ),
    "ipcgan": (
        "ipcgan_step",
        ["--image_size=16", "--batch_size=2", "--g_base_filters=4", "--num_blocks=1",
         "--d_base_filters=4", "--alexnet_input_size=67", "--alexnet_conv_filters=4,4,4,4,4",
         "--alexnet_fc_units=8"],
    ),
    "age_classifier": (
        "age_classifier_step",
        ["--image_size=67", "--batch_size=2", "--conv_filters=4,4,4,4,4", "--fc_units=8",
         "--num_identities=3"],
    ),
}
#: The keys documented in bench/_common.py and docs/performance.md.
KEYS = {
    "bench", "step_s", "step_min_s", "first_step_s", "infer_s", "images_per_s", "peak_rss_mb",
    "image_size", "batch_size", "global_batch", "replicas", "strategy", "mixed_precision", "xla",
}


@pytest.fixture(scope="module")
def outputs():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    processes = {
        name: subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "bench", f"{script}.py"), *args, *TINY],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (script, args) in RUNS.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("name", sorted(RUNS))
def test_last_line_is_the_json_report(outputs, name):
    returncode, stdout, stderr = outputs[name]
    assert returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert KEYS <= set(report), KEYS - set(report)
    assert report["bench"] == RUNS[name][0].removesuffix("_step")
    assert report["steps"] == 1 and len(report["step_times_s"]) == 1
    for key in ("step_s", "first_step_s", "infer_s", "images_per_s", "peak_rss_mb"):
        assert report[key] > 0, key
    assert report["images_per_s"] == pytest.approx(report["global_batch"] / report["step_s"])


def test_mirrored_run_uses_both_logical_cpus(outputs):
    report = json.loads(outputs["dcgan_mirrored"][1].strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["global_batch"] == 2


def test_unsupported_setting_is_a_one_line_error():
    """A setting the trainer's config lacks must not silently run without it."""
    sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
    try:
        import _common
    finally:
        sys.path.pop(0)
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Plain:
        batch_size: int = 1

    parser = _common.make_parser("x", image_size=8, batch_size=1)
    args = parser.parse_args(["--xla"])
    with pytest.raises(SystemExit) as raised:
        _common.config_with_scale(Plain, args, batch_size=2)
    assert raised.value.code == 2
    args = parser.parse_args(["--xla=false", "--nomixed_precision"])
    assert _common.config_with_scale(Plain, args, batch_size=2) == Plain(2)
