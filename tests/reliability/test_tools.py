"""Command-line behaviour on user mistakes and broken inputs: one line, no traceback, and the
checkpoint folder the tool read is unchanged."""

import json
import shutil

import pytest

from tests.reliability.conftest import BROKEN_FOR_TOOLS, tree_digest, write

TOOLS = [
    "train_cyclegan", "train_dcgan", "train_cgan", "train_ipcgan", "train_age_classifier",
    "test_cyclegan", "test_dcgan", "test_ipcgan", "compute_fid", "convert_tf1_checkpoint",
    "prepare_utkface", "prepare_ipcgan_lists", "eval_aging", "fetch_fid_weights",
]


@pytest.mark.parametrize("name", TOOLS)
def test_unknown_and_garbled_flags_are_refused_without_traceback(tool, subprocess_tool, name):
    # In-process for every tool; train_cyclegan's also as ``python tools/...`` (exit code and
    # the error line across a process boundary).
    if name == "train_cyclegan":
        tool = subprocess_tool
    garbled = ((["--no_such_flag=1"], "no_such_flag"), (["--helpshort=maybe"], "helpshort"))
    for args, flag in garbled:
        result = tool(name, *args, timeout=120)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert flag in result.stderr


def test_cyclegan_tools_on_bad_values_and_foreign_checkpoints(tool, cyclegan_run, tmp_path):
    """Several refusals in one tool start each: every one is a single ``error:`` line."""
    root, checkpoint_dir, data = cyclegan_run
    before = tree_digest(checkpoint_dir)
    foreign = tmp_path / "foreign"
    shutil.copytree(checkpoint_dir, foreign)
    info = json.loads((foreign / "facegan_run.json").read_text())
    info["kind"] = "dcgan"
    (foreign / "facegan_run.json").write_text(json.dumps(info))
    cases = [
        ("train_cyclegan", ["--load_size=8", "--fine_size=16", f"--dataset_dir={data}"],
         "load_size"),
        ("train_cyclegan", ["--fine_size=30", f"--dataset_dir={data}"], "fine_size"),
        ("train_cyclegan", [f"--dataset_dir={tmp_path / 'nowhere'}"], "nowhere"),
        ("test_cyclegan", [f"--checkpoint_dir={foreign}", f"--dataset_dir={data}",
                           f"--test_dir={tmp_path / 'out'}"], "'dcgan' model, expected 'cyclegan'"),
        ("test_dcgan", [f"--checkpoint_dir={checkpoint_dir}"],
         "cyclegan"),
    ]
    for name, args, expected in cases:
        result = tool(name, *args, cwd=str(tmp_path), timeout=300)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2, (name, args, result.stderr[-1500:])
        assert len(lines) == 1 and expected in lines[0], (name, result.stderr[-1500:])
        assert "Traceback" not in result.stderr
    assert tree_digest(checkpoint_dir) == before
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_test_cyclegan_skips_broken_inputs_in_a_non_ascii_folder_and_counts(
    tool, cyclegan_run, tmp_path
):
    root, checkpoint_dir, data = cyclegan_run
    before = tree_digest(checkpoint_dir)
    source = tmp_path / "entrée à traduire"
    shutil.copytree(data / "testA", source)
    for name, content in BROKEN_FOR_TOOLS.items():
        write(source / name, content)
    out = tmp_path / "résultats 1"
    result = tool("test_cyclegan", f"--checkpoint_dir={checkpoint_dir}", f"--source={source}",
                  f"--test_dir={out}", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(summary["skipped"]) == len(BROKEN_FOR_TOOLS)
    # Each skipped file is also named in a warning on stderr.
    warnings = [line for line in result.stderr.splitlines() if "skipping" in line]
    assert len(warnings) == len(BROKEN_FOR_TOOLS), result.stderr[-2000:]
    for name in BROKEN_FOR_TOOLS:
        assert sum(name in line for line in warnings) == 1, (name, warnings)
    written = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert written == sorted(f"AtoB_{p.name}" for p in (data / "testA").iterdir())
    assert tree_digest(checkpoint_dir) == before
