"""The CycleGAN command-line tools through their real ``run()`` entry points (in-process, a
fresh flag parse per call, as `tests.cli_runner.run_cli` does)."""

import html.parser
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from facegan_tf.data.images import save_image, to_uint8

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "cyclegan_xhujoy_resnet")
TINY = [
    "--load_size=20",
    "--fine_size=16",
    "--ngf=4",
    "--ndf=4",
    "--num_blocks=1",
    "--print_freq=2",
    "--save_freq=100",
    "--log_freq=1",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, random_images):
    root = str(tmp_path_factory.mktemp("cyc_data"))
    for sub, count, seed in (("trainA", 3, 0), ("trainB", 3, 1), ("testA", 2, 2), ("testB", 2, 3)):
        random_images(os.path.join(root, sub), count, seed, prefix="face ")
    return root


class _ImageCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])
        elif tag not in ("meta", "img"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()


def _check_gallery(path):
    parser = _ImageCollector()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    assert parser.stack == []
    base = os.path.dirname(path)
    from urllib.parse import unquote

    for src in parser.sources:
        assert os.path.isfile(os.path.join(base, unquote(src))), src
    return parser.sources


def test_train_then_continue_train_then_test(tool, data_dir, tmp_path):
    run = str(tmp_path / "run")
    common = [
        f"--data_dir={data_dir}",
        f"--checkpoint_dir={run}/ckpt",
        f"--sample_dir={run}/s",
        f"--log_dir={run}/logs",
        *TINY,
    ]
    first = tool("train_cyclegan", *common, "--max_steps=2")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.strip().splitlines()[-1])["step"] == 2

    again = tool("train_cyclegan", *common, "--max_steps=4")
    assert again.returncode == 2
    assert "already holds a run" in again.stderr and "Traceback" not in again.stderr

    flagfile = tmp_path / "run.flags"
    flagfile.write_text("\n".join([*common, "--max_steps=4", "--continue_train"]) + "\n")
    second = tool("train_cyclegan", f"--flagfile={flagfile}")
    assert second.returncode == 0, second.stderr
    assert "at step 2" in second.stdout
    assert json.loads(second.stdout.strip().splitlines()[-1])["step"] == 4
    steps = [json.loads(line)["step"] for line in open(f"{run}/logs/stats.jsonl")]
    assert steps == [1, 2, 3, 4]
    _check_gallery(f"{run}/s/index.html")

    out = str(tmp_path / "test out")
    test = tool(
        "test_cyclegan",
        f"--checkpoint_dir={run}/ckpt",
        f"--data_dir={data_dir}",
        "--which_direction=BtoA",
        f"--test_dir={out}",
        "--fine_size=16",
    )
    assert test.returncode == 0, test.stderr
    assert sorted(os.listdir(out)) == sorted(
        ["BtoA_face 0.png", "BtoA_face 1.png", "BtoA_manifest.json", "index.html"]
    )
    assert len(_check_gallery(os.path.join(out, "index.html"))) == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fine_size=30", "--load_size=30"], "multiple of 4"),
        (["--data_dir=/nonexistent/faces"], "does not exist"),
        (["--batch_size=0"], "batch_size"),
    ],
)
def test_train_tool_refuses_bad_flags_in_one_line(tool, data_dir, tmp_path, args, message):
    result = tool(
        "train_cyclegan", f"--data_dir={data_dir}", f"--checkpoint_dir={tmp_path}/ckpt", *args
    )
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "ckpt" / "checkpoint")


def test_train_tool_refuses_missing_trainb(tool, data_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(os.path.join(data_dir, "trainA"), broken / "trainA")
    result = tool("train_cyclegan", f"--data_dir={broken}", f"--checkpoint_dir={tmp_path}/c")
    assert result.returncode == 2
    assert "trainB folder" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def golden_inputs(tmp_path_factory):
    golden = np.load(os.path.join(FIXTURE, "golden.npz"))
    folder = tmp_path_factory.mktemp("golden_png")
    for i, image in enumerate(golden["test_A"]):
        save_image(str(folder / f"ä{i}.png"), to_uint8(image))
    return str(folder), golden


def _outputs(folder, count):
    return np.stack(
        [np.asarray(Image.open(os.path.join(folder, f"AtoB_ä{i}.png"))) for i in range(count)]
    ).astype(int)


def test_test_tool_on_legacy_folder_reproduces_original(tool, golden_inputs, tmp_path):
    source, golden = golden_inputs
    out = str(tmp_path / "legacy_out")
    result = tool(
        "test_cyclegan",
        f"--checkpoint_dir={FIXTURE}/checkpoint",
        f"--source={source}",
        f"--test_dir={out}",
        "--fine_size=64",
        "--which_direction=AtoB",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["checkpoint_source"] == "xhujoy_tf1"
    expected = to_uint8(golden["fake_B"]).astype(int)
    assert np.abs(_outputs(out, 2) - expected).max() <= 1

    converted = str(tmp_path / "converted")
    conversion = tool(
        "convert_tf1_checkpoint",
        "--kind=cyclegan_xhujoy",
        f"--tf1_checkpoint={FIXTURE}/checkpoint/horse2zebra_64",
        f"--output_dir={converted}",
        "--fine_size=64",
    )
    assert conversion.returncode == 0, conversion.stderr
    out2 = str(tmp_path / "converted_out")
    result = tool(
        "test_cyclegan",
        f"--checkpoint_dir={converted}",
        f"--source={source}",
        f"--test_dir={out2}",
        "--fine_size=64",
    )
    assert result.returncode == 0, result.stderr
    assert np.abs(_outputs(out2, 2) - expected).max() <= 1


def test_test_tool_refuses_without_checkpoint(tool, golden_inputs, tmp_path):
    source, _ = golden_inputs
    empty = tmp_path / "empty"
    empty.mkdir()
    result = tool(
        "test_cyclegan",
        f"--checkpoint_dir={empty}",
        f"--source={source}",
        f"--test_dir={tmp_path}/out",
    )
    assert result.returncode == 2
    assert "No checkpoint found" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out")


def test_help_lists_the_flags_with_their_meaning(tool):
    result = tool("train_cyclegan", "--help")
    assert result.returncode == 0, result.stderr
    for flag in (
        "--dataset_dir",
        "--epoch",
        "--[no]use_resnet",
        "--L1_lambda",
        "--[no]continue_train",
    ):
        assert flag in result.stdout
    assert "Train (or, with --phase=test, apply) a CycleGAN" in result.stdout


def test_converted_legacy_checkpoint_continues_training(tool, random_images, tmp_path):
    """convert_tf1_checkpoint's output is accepted by --continue_train: the run starts at
    step 0 from the original's weights (fresh Adam), so after one step every weight is
    within one Adam step (lr) of the legacy value."""
    from facegan_tf.cli.convert_tf1_checkpoint import convert_cyclegan_xhujoy
    from facegan_tf.migrate import load_legacy
    from facegan_tf.training.cyclegan_inference import load_cyclegan_models

    legacy_folder = os.path.join(FIXTURE, "checkpoint", "horse2zebra_64")
    converted = str(tmp_path / "converted")
    result = convert_cyclegan_xhujoy(legacy_folder, converted, fine_size=64)
    assert (result["ngf"], result["ndf"], result["num_blocks"]) == (8, 8, 9)
    data = tmp_path / "data"
    for sub, seed in (("trainA", 0), ("trainB", 1)):
        random_images(str(data / sub), 2, seed, size=64)
    run = tool(
        "train_cyclegan",
        f"--data_dir={data}",
        f"--checkpoint_dir={converted}",
        f"--sample_dir={tmp_path}/s",
        f"--log_dir={tmp_path}/logs",
        "--fine_size=64",
        "--load_size=64",
        "--ngf=8",
        "--ndf=8",
        "--continue_train",
        "--max_steps=1",
    )
    assert run.returncode == 0, run.stderr
    assert "at step 0, epoch 0" in run.stdout
    assert json.loads(run.stdout.strip().splitlines()[-1])["step"] == 1
    trained, info = load_cyclegan_models(converted)
    assert info["checkpoint"].endswith("ckpt-1")
    legacy = load_legacy("cyclegan_xhujoy", legacy_folder)
    lr = 2e-4
    moved = 0
    for name, model in trained.items():
        for ours, original in zip(model.get_weights(), legacy[name].get_weights(), strict=True):
            step = np.abs(ours - original)
            assert step.max() <= lr * (1 + 1e-3), name
            moved += int((step > lr / 2).sum())
    assert moved > 0.9 * sum(w.size for m in legacy.values() for w in m.get_weights())
