"""Every command in README.md and docs/*.md is real, and the walkthrough runs end to end.

* Static (instant): every ``python tools/<tool>.py`` or ``facegan-<tool>`` command in a fenced
  ``bash`` block names an existing tool, and every ``--flag`` / ``--noflag`` it passes is defined
  by that tool (read from the ``flags.DEFINE_*`` calls of ``facegan_tf/cli/<tool>.py`` without
  importing it) or is an absl built-in; enum flags get allowed values; console scripts exist.
* Coverage: every documented tool is run by some test (or by the walkthrough test below).
* End to end: the blocks marked ``<!-- docs-test: walkthrough -->`` (docs/walkthrough.md: raw
  photos -> aligned faces -> data folder -> training / legacy conversion -> test, apply ->
  export) and ``<!-- docs-test: ipcgan-lists -->`` (docs/ipcgan.md) run in order in a temporary
  folder (synthetic photos, the legacy-checkpoint fixture), with the tiny sizes of
  `TINY_OVERRIDES` appended to each command (absl keeps the last value of a repeated flag).
  A step whose optional extra is missing is skipped with the reason.
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.cli_runner import run_cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_PATHS = [os.path.join(REPO_ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(REPO_ROOT, "docs", "*.md"))
)

#: Flags every absl program accepts (absl.app and absl.logging define them).
ABSL_BUILTINS = frozenset(
    {
        "flagfile", "undefok", "help", "helpfull", "helpshort", "helpxml", "only_check_args",
        "pdb", "pdb_post_mortem", "run_with_pdb", "run_with_profiling", "profile_file",
        "use_cprofile_for_profiling", "logtostderr", "alsologtostderr", "log_dir", "verbosity",
        "v", "stderrthreshold", "showprefixforinfo", "logger_levels",
    }
)
COMMAND_LANGUAGES = ("bash", "sh", "shell", "console")
SEPARATORS = frozenset({"&&", "||", ";", "|"})
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*([\w-]+)\s*-->\s*$")


# --------------------------------------------------------------------------- parsing the docs


@dataclasses.dataclass
class Block:
    path: str
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: str | None  # name of a "<!-- docs-test: NAME -->" line right above the fence


@dataclasses.dataclass
class Invocation:
    where: str  # "docs/x.md:12"
    tool: str
    args: list[str]
    console_script: bool
    line: str  # the logical command line


def read_blocks(path: str) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, language, start = match.group(1), match.group(2).lower(), index
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        marker = None
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0 and (found := MARKER.match(lines[previous])):
            marker = found.group(1)
        blocks.append(Block(path, start + 1, language, "\n".join(body), marker))
        index += 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined; blank lines dropped."""
    joined, current = [], ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            joined.append(current.strip())
        current = ""
    if current.strip():
        joined.append(current.strip())
    return joined


def invocations_in(text: str, where: str) -> list[Invocation]:
    """Every tool invocation of a shell snippet (``python tools/x.py`` or ``facegan-x``)."""
    found = []
    for line in logical_lines(text):
        tokens = shlex.split(line, comments=True)
        segments, segment = [], []
        for token in tokens:
            if token in SEPARATORS:
                segments.append(segment)
                segment = []
            else:
                segment.append(token)
        segments.append(segment)
        for words in segments:
            while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                words = words[1:]  # VAR=value prefixes
            if len(words) >= 2 and re.fullmatch(r"python3?", words[0]):
                script = re.fullmatch(r"(?:\./)?tools/(\w+)\.py", words[1])
                if script:
                    found.append(Invocation(where, script.group(1), words[2:], False, line))
            elif words and words[0].startswith("facegan-"):
                tool = words[0][len("facegan-"):].replace("-", "_")
                found.append(Invocation(where, tool, words[1:], True, line))
    return found


def documented_invocations() -> list[Invocation]:
    found = []
    for path in DOC_PATHS:
        for block in read_blocks(path):
            if block.language in COMMAND_LANGUAGES:
                where = f"{os.path.relpath(path, REPO_ROOT)}:{block.line}"
                found.extend(invocations_in(block.text, where))
    return found


# ------------------------------------------------------------------ the tools' flags (static)


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    kind: str  # "bool", "enum" or "value"
    enum_values: tuple[str, ...] | None = None


def _literal(node, constants: dict):
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _module_path(module: str) -> str | None:
    path = os.path.join(REPO_ROOT, *module.split(".")) + ".py"
    return path if os.path.isfile(path) else None


def _flag_definitions(path: str, function: str | None = None, depth: int = 0) -> dict:
    """FlagSpecs defined by ``flags.DEFINE_*`` calls in a module (or one of its functions),
    following calls into helper functions of other ``facegan_tf`` modules."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    constants, imported_modules, imported_functions = {}, {}, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = _literal(node.value, constants)
            if isinstance(target, ast.Name) and value is not None:
                constants[target.id] = value
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facegan_tf"):
            for alias in node.names:
                sub = _module_path(f"{node.module}.{alias.name}")
                if sub:
                    imported_modules[alias.asname or alias.name] = sub
                elif _module_path(node.module):
                    imported_functions[alias.asname or alias.name] = (
                        _module_path(node.module), alias.name
                    )
    scope = tree
    if function is not None:
        scope = next(
            (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function),
            None,
        )
        if scope is None:
            return {}
    specs, aliases = {}, []
    for node in ast.walk(scope):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name.startswith("DEFINE"):
            args = list(node.args) + [kw.value for kw in node.keywords if kw.arg == "name"]
            flag = _literal(args[0], constants) if args else None
            if not isinstance(flag, str):
                continue
            if name == "DEFINE_alias":
                aliases.append((flag, _literal(node.args[1], constants)))
            elif name in ("DEFINE_bool", "DEFINE_boolean"):
                specs[flag] = FlagSpec("bool")
            elif name in ("DEFINE_enum", "DEFINE_multi_enum"):
                values = node.args[2] if len(node.args) > 2 else next(
                    (kw.value for kw in node.keywords if kw.arg == "enum_values"), None
                )
                values = _literal(values, constants) if values is not None else None
                specs[flag] = FlagSpec("enum", tuple(values) if values else None)
            else:
                specs[flag] = FlagSpec("value")
        elif depth < 3:
            target = None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id in imported_modules:
                    target = (imported_modules[func.value.id], func.attr)
            elif isinstance(func, ast.Name) and func.id in imported_functions:
                target = imported_functions[func.id]
            if target:
                specs.update(_flag_definitions(target[0], target[1], depth + 1))
    for alias, original in aliases:
        if original in specs:
            specs[alias] = specs[original]
    return specs


_FLAG_CACHE: dict[str, dict] = {}


def tool_flags(tool: str) -> dict[str, FlagSpec]:
    if tool not in _FLAG_CACHE:
        _FLAG_CACHE[tool] = _flag_definitions(
            os.path.join(REPO_ROOT, "facegan_tf", "cli", f"{tool}.py")
        )
    return _FLAG_CACHE[tool]


def console_scripts() -> dict[str, str]:
    """``facegan-x`` -> ``facegan_tf.cli.x:run`` from setup.py's CONSOLE_SCRIPTS."""
    with open(os.path.join(REPO_ROOT, "setup.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CONSOLE_SCRIPTS":
            entries = ast.literal_eval(node.value)
            return dict(entry.replace(" ", "").split("=", 1) for entry in entries)
    return {}


def check_invocation(invocation: Invocation) -> list[str]:
    """Problems of one documented command (empty when it is valid)."""
    where = f"{invocation.where}: {invocation.line!r}"
    cli_path = os.path.join(REPO_ROOT, "facegan_tf", "cli", f"{invocation.tool}.py")
    script_path = os.path.join(REPO_ROOT, "tools", f"{invocation.tool}.py")
    if not (os.path.isfile(cli_path) and os.path.isfile(script_path)):
        return [f"{where}: no tool {invocation.tool!r} (tools/{invocation.tool}.py)"]
    problems = []
    if invocation.console_script:
        script = "facegan-" + invocation.tool.replace("_", "-")
        if console_scripts().get(script) != f"facegan_tf.cli.{invocation.tool}:run":
            problems.append(f"{where}: setup.py installs no {script} command")
    specs = tool_flags(invocation.tool)
    args = list(invocation.args)
    while args:
        token = args.pop(0)
        if re.fullmatch(r"\d*>>?&?\d*|<", token):
            break  # redirection: the rest is not the tool's
        if not token.startswith("--"):
            problems.append(f"{where}: positional argument {token!r} (the tools take only flags)")
            continue
        name, has_value, value = token[2:].partition("=")
        spec = specs.get(name)
        negated = specs.get(name[2:]) if name.startswith("no") else None
        if spec is None and negated is not None and negated.kind == "bool":
            continue
        if spec is None:
            if name not in ABSL_BUILTINS:
                problems.append(f"{where}: {invocation.tool} has no flag --{name}")
            continue
        if spec.kind == "bool":
            if has_value and value.lower() not in ("true", "false", "1", "0"):
                problems.append(f"{where}: --{name} is boolean. Received: {value!r}")
            continue
        if not has_value:
            if not args:
                problems.append(f"{where}: --{name} needs a value")
                continue
            value = args.pop(0)
        if spec.kind == "enum" and spec.enum_values and value not in spec.enum_values:
            problems.append(
                f"{where}: --{name} takes one of {list(spec.enum_values)}. Received: {value!r}"
            )
    return problems


# ------------------------------------------------------------------------------ static tests


def test_the_parser_reads_commands_and_catches_wrong_flags():
    text = (
        "python tools/train_cyclegan.py --data_dir=./d --nouse_lsgan \\\n"
        "    --which_direction BtoA   # comment --not_a_flag\n"
        "facegan-test-cyclegan --which_direction=sideways --bogus=1 && echo done\n"
        "python tools/no_such_tool.py --x=1\n"
    )
    found = invocations_in(text, "example.md:1")
    assert [i.tool for i in found] == ["train_cyclegan", "test_cyclegan", "no_such_tool"]
    assert found[0].args == ["--data_dir=./d", "--nouse_lsgan", "--which_direction", "BtoA"]
    assert check_invocation(found[0]) == []
    problems = check_invocation(found[1])
    assert any("--which_direction takes one of ['AtoB', 'BtoA']" in p for p in problems)
    assert any("has no flag --bogus" in p for p in problems)
    assert "no tool 'no_such_tool'" in check_invocation(found[2])[0]


def test_flag_tables_are_read_statically():
    cyclegan = tool_flags("train_cyclegan")
    assert cyclegan["use_lsgan"].kind == "bool"
    assert cyclegan["strategy"].enum_values == ("default", "mirrored", "multi_worker")
    assert cyclegan["L1_lambda"].kind == "value"
    assert tool_flags("train_dcgan")["continue_train"].kind == "bool"  # a DEFINE_alias


def test_every_documented_command_uses_real_tools_and_flags():
    invocations = documented_invocations()
    assert len(invocations) >= 30, "the docs' bash blocks hold fewer commands than expected"
    assert any(
        i.tool == "train_cyclegan" and i.args == ["--demo"] and i.where.startswith("README.md")
        for i in invocations
    )
    problems = [p for invocation in invocations for p in check_invocation(invocation)]
    assert not problems, "\n".join(problems)


def test_command_blocks_are_marked_bash():
    """Commands live in ```bash blocks, so the checks above see all of them."""
    unmarked = [
        f"{os.path.relpath(block.path, REPO_ROOT)}:{block.line}"
        for path in DOC_PATHS
        for block in read_blocks(path)
        if block.language not in COMMAND_LANGUAGES + ("python",)
        and re.search(r"(^|\s)(python3? (\./)?tools/|facegan-[a-z])", block.text)
    ]
    assert not unmarked, f"command blocks without the bash language tag: {unmarked}"


TEST_COMMAND = 'python -m pip install -e ".[test]" && python -m pytest -q --durations=20'


def test_quickstart_commands_are_unchanged():
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    assert 'python -m pip install -e ".[demo]" && python tools/train_cyclegan.py --demo' in readme
    assert TEST_COMMAND in readme.splitlines()


def test_ci_runs_the_readme_test_command_and_prints_the_slowest_tests():
    with open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8") as handle:
        commands = [line.strip() for line in handle if "pytest" in line and not
                    line.lstrip().startswith("#")]
    assert commands == [TEST_COMMAND]


def test_docs_links_point_to_existing_files():
    missing = []
    for path in DOC_PATHS:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        text = re.sub(r"(`{3,}|~{3,}).*?\1", "", text, flags=re.S)  # code blocks
        text = re.sub(r"`[^`\n]*`", "", text)  # inline code
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            if not os.path.exists(os.path.join(os.path.dirname(path), target)):
                missing.append(f"{os.path.relpath(path, REPO_ROOT)} -> {target}")
    assert not missing, "broken links:\n" + "\n".join(missing)


def test_console_scripts_map_to_run_functions():
    scripts = console_scripts()
    tools = sorted(
        os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO_ROOT, "tools", "*.py"))
    )
    problems = []
    for tool in tools:
        name = "facegan-" + tool.replace("_", "-")
        if scripts.get(name) != f"facegan_tf.cli.{tool}:run":
            problems.append(f"tools/{tool}.py has no console script {name}")
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        path = _module_path(module)
        if path is None:
            problems.append(f"{name}: no module {module}")
            continue
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        if not any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body):
            problems.append(f"{name}: {module} defines no {function}()")
    assert not problems, "\n".join(problems)


def test_every_flag_has_a_help_text():
    """--help explains each flag: every flags.DEFINE_* call in facegan_tf/cli has a help text."""
    short = []
    for path in sorted(glob.glob(os.path.join(REPO_ROOT, "facegan_tf", "cli", "*.py"))):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            name = getattr(getattr(node, "func", None), "attr", "")
            if not isinstance(node, ast.Call) or not name.startswith("DEFINE"):
                continue
            if name == "DEFINE_alias":
                continue
            position = 3 if name in ("DEFINE_enum", "DEFINE_multi_enum") else 2
            text = next((kw.value for kw in node.keywords if kw.arg == "help"), None)
            if text is None and len(node.args) > position:
                text = node.args[position]
            value = _literal(text, {}) if text is not None else None
            if not isinstance(value, str) or len(value.split()) < 2:
                short.append(f"{os.path.basename(path)}: --{_literal(node.args[0], {})}")
    assert not short, f"flags without a help text: {short}"


def _exercised_by_tests(tool: str) -> bool:
    pattern = re.compile(
        rf"(\w*(tool|cli)\w*\(\s*[\"']{tool}[\"']|tools/{tool}\.py|facegan_tf\.cli\.{tool}\b"
        rf"|cli import [^\n]*\b{tool}\b)"
    )
    for path in glob.glob(os.path.join(REPO_ROOT, "tests", "**", "*.py"), recursive=True):
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        with open(path, encoding="utf-8") as handle:
            if pattern.search(handle.read()):
                return True
    return False


def tools_run_by_docs_tests() -> set[str]:
    return {
        invocation.tool
        for marker in ("walkthrough", "ipcgan-lists")
        for where, line in marked_commands(marker)
        for invocation in invocations_in(line, where)
    }


def test_every_documented_tool_is_exercised():
    documented = {i.tool for i in documented_invocations()}
    run_here = tools_run_by_docs_tests()
    missing = sorted(t for t in documented if t not in run_here and not _exercised_by_tests(t))
    assert not missing, f"documented tools that no test runs: {missing}"


# ----------------------------------------------------------------- the walkthrough, end to end

#: Tiny settings appended to each walkthrough command (absl keeps a repeated flag's last value).
TINY_OVERRIDES = {
    "align_faces": ["--size=32"],
    "train_cyclegan": [
        "--load_size=36", "--fine_size=32", "--ngf=8", "--ndf=8", "--num_blocks=1",
        "--max_steps=2", "--save_freq=2", "--print_freq=2", "--log_freq=1",
    ],
    "test_cyclegan": ["--fine_size=32"],
    "convert_tf1_checkpoint": ["--fine_size=32"],
    "apply_generator": ["--image_size=32"],
    "export_generator": ["--image_size=32"],
    "prepare_ipcgan_lists": ["--label_pair_repeats=1"],
    "train_age_classifier": [
        "--max_steps=1", "--batch_size=2", "--conv_filters=4,4,4,4,4", "--fc_units=8",
        "--input_size=67", "--save_interval=1", "--log_freq=1",
    ],
}

#: Optional packages a step needs: (tool, flag value that needs it) -> (modules, extra).
OPTIONAL_EXTRAS = {
    ("align_faces", "mtcnn"): (("mtcnn",), "align"),
    ("align_faces", "dlib"): (("dlib",), "align"),
    ("export_generator", "onnx"): (("tf2onnx", "onnx", "onnxruntime"), "onnx"),
}


def _utkface_name(age: int, gender: int, in_test: bool) -> str:
    """A UTKFace name whose aligned PNG lands in testA/B (or not) under prepare_utkface's
    documented split: sha256 of the file name, first 8 bytes / 2**64 < 0.1."""
    for stamp in range(20170101000000000, 20170101000100000):
        name = f"{age}_{gender}_0_{stamp}"
        digest = hashlib.sha256(f"{name}.png".encode()).digest()
        if (int.from_bytes(digest[:8], "big") / 2**64 < 0.1) == in_test:
            return f"{name}.jpg"
    raise AssertionError("no name found")


def _raw_photos(root: str) -> dict:
    """UTKFace-style raw photos: real faces (scikit-image's astronaut photo, moved, scaled and
    flipped), one photo without a face and one unreadable file."""
    from PIL import Image
    from skimage import data

    face = Image.fromarray(data.astronaut())
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    names = {"young": [], "old": []}
    for index in range(8):
        age = (19, 22, 24, 21, 52, 55, 58, 60)[index]
        group = "young" if age < 40 else "old"
        side = int(rng.integers(280, 420))
        canvas = Image.new("RGB", (520, 480), tuple(int(c) for c in rng.integers(0, 255, 3)))
        photo = face.resize((side, side))
        if index % 2:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        canvas.paste(photo, (int(rng.integers(0, 520 - side)), int(rng.integers(0, 480 - side))))
        name = _utkface_name(age, index % 2, in_test=index in (0, 4))
        canvas.save(os.path.join(root, name), quality=92)
        names[group].append(name)
    Image.fromarray(data.coffee()).save(os.path.join(root, "30_0_0_20170101000000999.jpg"))
    with open(os.path.join(root, "31_1_0_20170101000000998.jpg"), "wb") as handle:
        handle.write(b"not a JPEG")
    return names


def marked_commands(marker: str) -> list[tuple[str, str]]:
    """(where, command line) of every ``<!-- docs-test: marker -->`` block, in page order."""
    lines = []
    for path in DOC_PATHS:
        for block in read_blocks(path):
            if block.marker == marker:
                where = f"{os.path.relpath(path, REPO_ROOT)}:{block.line}"
                assert block.language == "bash", f"{where}: a docs-test block must be bash"
                lines.extend((where, line) for line in logical_lines(block.text))
    return lines


def _missing_extra(invocation: Invocation) -> str | None:
    """Why a walkthrough step cannot run here (its optional package is missing), or None."""
    values = {"mtcnn"} if invocation.tool == "align_faces" else set()  # the default detector
    for token in invocation.args:
        name, _, value = token[2:].partition("=")
        if name == "detector":
            values.discard("mtcnn")
        values.update(value.split(","))
    for (tool, value), (modules, extra) in OPTIONAL_EXTRAS.items():
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if tool == invocation.tool and value in values and absent:
            return f"{', '.join(absent)} not installed (pip install -e '.[{extra}]')"
    return None


def _workspace(work: str) -> dict:
    """``tools/`` and a ``python`` launcher inside ``work``; returns the environment."""
    os.symlink(os.path.join(REPO_ROOT, "tools"), os.path.join(work, "tools"))
    bin_dir = os.path.join(work, ".bin")
    os.makedirs(bin_dir)
    launcher = os.path.join(bin_dir, "python")  # "python" in the commands = this interpreter
    with open(launcher, "w", encoding="utf-8") as handle:
        handle.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    os.chmod(launcher, 0o755)
    return dict(
        os.environ,
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
        # tools/ is a symlink here; the scripts put their own (unresolved) parent on sys.path.
        PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )


def _plain_invocation(command: str) -> list[str] | None:
    """``[tool, *args]`` when ``command`` is a single ``python tools/<tool>.py`` call with no
    shell syntax (pipes, redirections, variables, globs, several commands), else None."""
    if re.search(r"[|&;<>$`*?(){}\[\]~]", command):
        return None
    words = shlex.split(command, comments=True)
    if len(words) < 2 or words[0] != "python":
        return None
    script = re.fullmatch(r"(?:\./)?tools/(\w+)\.py", words[1])
    return [script.group(1), *words[2:]] if script else None


def run_marked(marker: str, work: str) -> dict:
    """Runs the commands of the ``marker`` blocks in order in ``work`` (tiny overrides
    appended); stops at the first failure. Returns ``{"work", "steps"}``."""
    env = _workspace(work)
    steps = []
    for where, line in marked_commands(marker):
        found = invocations_in(line, where)
        invocation = found[0] if found else None
        command = re.sub(r"\s+#[^'\"]*$", "", line)
        if invocation is not None:
            reason = _missing_extra(invocation)
            if reason:
                steps.append({"command": line, "skipped": reason, "tool": invocation.tool})
                if invocation.tool == "align_faces":
                    _substitute_alignment(invocation, work)
                continue
            command += " " + " ".join(TINY_OVERRIDES.get(invocation.tool, []))
        started = time.monotonic()
        words = _plain_invocation(command)
        if words is not None:
            # One plain ``python tools/<tool>.py ...`` line: the tool's run() in-process, in
            # ``work``, exactly as the script would call it (no interpreter start-up).
            result = run_cli(words[0], *words[1:], cwd=work)
        else:
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", command], cwd=work, env=env,
                capture_output=True, text=True, timeout=600,
            )
        seconds = time.monotonic() - started
        print(f"[{seconds:5.1f} s] {command}")
        steps.append(
            {
                "command": line,
                "ran": command,
                "tool": invocation.tool if invocation else None,
                "returncode": result.returncode,
                "seconds": round(seconds, 1),
                "output": (result.stdout + result.stderr)[-3000:],
            }
        )
        if result.returncode != 0:
            break
    return {"work": work, "steps": steps}


def _cacd_faces(folder: str) -> None:
    """Small random faces with CACD names ``<age>_<First>_<Last>_<NNNN>.jpg``, 5 age groups."""
    from PIL import Image

    rng = np.random.default_rng(1)
    os.makedirs(folder)
    for index in range(20):
        age = (15, 25, 35, 45, 55)[index % 5] + index // 5
        base = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
        name = f"{age}_First{index % 4}_Last{index % 4}_{index:04d}.jpg"
        Image.fromarray(base).resize((32, 32), Image.BILINEAR).save(os.path.join(folder, name))


@pytest.fixture(scope="module")
def walkthrough_run(tmp_path_factory):
    """docs/walkthrough.md from raw photos to the gallery (synthetic photos, legacy fixture)."""
    work = str(tmp_path_factory.mktemp("walkthrough"))
    _raw_photos(os.path.join(work, "photos", "utkface"))
    _raw_photos(os.path.join(work, "photos", "new"))
    legacy = os.path.join(work, "legacy", "checkpoint", "faces_256")
    fixture = os.path.join(REPO_ROOT, "tests", "fixtures", "cyclegan_xhujoy_resnet", "checkpoint")
    shutil.copytree(os.path.join(fixture, "horse2zebra_64"), legacy)
    return run_marked("walkthrough", work)


@pytest.fixture(scope="module")
def ipcgan_lists_run(tmp_path_factory):
    """docs/ipcgan.md's list building and age-classifier training on tiny CACD-named faces."""
    work = str(tmp_path_factory.mktemp("ipcgan_lists"))
    _cacd_faces(os.path.join(work, "CACD_cropped_400"))
    return run_marked("ipcgan-lists", work)


def _substitute_alignment(invocation: Invocation, work: str) -> None:
    """Stands in for a skipped align_faces step: centre crops of the readable photos, at the
    same relative paths as the tool's outputs."""
    from PIL import Image

    values = dict(token[2:].partition("=")[::2] for token in invocation.args)
    source, output = os.path.join(work, values["source"]), os.path.join(work, values["output_dir"])
    for folder, _, names in os.walk(source):
        target = os.path.join(output, os.path.relpath(folder, source))
        os.makedirs(target, exist_ok=True)
        for name in sorted(names):
            try:
                photo = Image.open(os.path.join(folder, name)).convert("RGB")
            except OSError:
                continue
            side = min(photo.size)
            crop = photo.crop((0, 0, side, side)).resize((32, 32))
            crop.save(os.path.join(target, os.path.splitext(name)[0] + ".png"))


RUNS = {"walkthrough": "walkthrough_run", "ipcgan-lists": "ipcgan_lists_run"}
STEPS = [(marker, index) for marker in RUNS for index in range(len(marked_commands(marker)))]


def _step_id(step: tuple[str, int]) -> str:
    marker, index = step
    found = invocations_in(marked_commands(marker)[index][1], "")
    return f"{marker}-{index}-{found[0].tool if found else 'shell'}"


def test_docs_test_blocks_exist():
    for marker in RUNS:
        assert marked_commands(marker), f"no <!-- docs-test: {marker} --> block in the docs"


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS, ids=_step_id)
def test_documented_command_runs(request, step):
    marker, index = step
    steps = request.getfixturevalue(RUNS[marker])["steps"]
    if index >= len(steps):
        pytest.fail(f"not reached: an earlier step failed ({steps[-1]['command']!r})")
    result = steps[index]
    if "skipped" in result:
        pytest.skip(f"{result['command']!r}: {result['skipped']}")
    tool = result["tool"]
    if tool and not os.path.isfile(os.path.join(REPO_ROOT, "tools", f"{tool}.py")):
        pytest.fail(f"tools/{tool}.py does not exist")
    assert result["returncode"] == 0, f"{result['ran']}\n{result['output']}"


def _ran(run: dict, tool: str) -> bool:
    return any(s["tool"] == tool and s.get("returncode") == 0 for s in run["steps"])


def _images(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.lower().endswith((".png", ".jpg")))


@pytest.mark.slow
def test_walkthrough_alignment_reports_every_photo(walkthrough_run):
    if not _ran(walkthrough_run, "align_faces"):
        pytest.skip("the alignment step did not run")
    aligned = os.path.join(walkthrough_run["work"], "aligned")
    for folder in ("utkface", "new"):
        # 8 photos hold a face; the coffee cup holds none and one file is not an image.
        names = _images(os.path.join(aligned, folder))
        assert len(names) == 8 and all(n.endswith(".png") for n in names), names
    with open(os.path.join(aligned, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    no_face = sorted(os.path.basename(name) for name in report["no_face"])
    unreadable = sorted(os.path.basename(item["source"]) for item in report["unreadable"])
    assert no_face == ["30_0_0_20170101000000999.jpg"] * 2, report["no_face"]
    assert unreadable == ["31_1_0_20170101000000998.jpg"] * 2, report["unreadable"]
    assert os.path.isfile(os.path.join(aligned, "index.html"))


@pytest.mark.slow
def test_walkthrough_builds_both_domains(walkthrough_run):
    if not _ran(walkthrough_run, "prepare_utkface"):
        pytest.skip("the data preparation step did not run")
    root = os.path.join(walkthrough_run["work"], "datasets", "aging")
    train_a, test_a = _images(os.path.join(root, "trainA")), _images(os.path.join(root, "testA"))
    train_b, test_b = _images(os.path.join(root, "trainB")), _images(os.path.join(root, "testB"))
    ages_a = {int(n.split("_")[0]) for n in train_a + test_a}
    ages_b = {int(n.split("_")[0]) for n in train_b + test_b}
    assert ages_a and ages_b and max(ages_a) <= 25 and min(ages_b) >= 50


@pytest.mark.slow
def test_walkthrough_gallery_shows_every_face(walkthrough_run):
    if not _ran(walkthrough_run, "apply_generator"):
        pytest.skip("the apply step did not run")
    work = walkthrough_run["work"]
    gallery = os.path.join(work, "results", "aged", "index.html")
    with open(gallery, encoding="utf-8") as handle:
        page = handle.read()
    sources = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", page)
    assert sources, "the gallery shows no image"
    from urllib.parse import unquote

    folder = os.path.dirname(gallery)
    missing = [s for s in sources if not os.path.isfile(os.path.join(folder, unquote(s)))]
    assert not missing, f"the gallery links to missing files: {missing}"
    faces = _images(os.path.join(work, "aligned", "new"))
    assert all(any(os.path.splitext(f)[0] in s for s in sources) for f in faces), (faces, sources)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_walkthrough_exports_tflite_and_onnx(walkthrough_run):
    step = next((s for s in walkthrough_run["steps"] if s["tool"] == "export_generator"), None)
    if step is None or step.get("returncode") != 0:
        pytest.skip("the export step did not run")
    exported = os.path.join(walkthrough_run["work"], "exported", "aging")
    files = [os.path.join(d, f) for d, _, fs in os.walk(exported) for f in fs]
    for suffix in (".keras", ".tflite", ".onnx"):
        assert any(f.endswith(suffix) and os.path.getsize(f) > 0 for f in files), (suffix, files)
    # The two deployment files translate an aligned face alike (TFLite vs ONNX Runtime).
    import onnxruntime
    import tensorflow as tf
    from PIL import Image

    new = os.path.join(walkthrough_run["work"], "aligned", "new")
    face = Image.open(os.path.join(new, _images(new)[0])).convert("RGB").resize((32, 32))
    batch = (np.asarray(face, np.float32) / 127.5 - 1.0)[None]
    interpreter = tf.lite.Interpreter(model_path=os.path.join(exported, "generator.tflite"))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    tflite_out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    session = onnxruntime.InferenceSession(os.path.join(exported, "generator.onnx"))
    onnx_out = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert tflite_out.shape == onnx_out.shape == batch.shape
    assert np.abs(tflite_out).max() <= 1.0 and np.abs(tflite_out - onnx_out).max() < 1e-3


@pytest.mark.slow
def test_ipcgan_lists_and_age_classifier(ipcgan_lists_run):
    if not _ran(ipcgan_lists_run, "train_age_classifier"):
        pytest.skip("the age-classifier step did not run")
    work = ipcgan_lists_run["work"]
    lists = os.path.join(work, "data", "cacd")
    for group in range(5):
        with open(os.path.join(lists, f"train_age_group_{group}.txt"), encoding="utf-8") as f:
            names = [line.split()[0] for line in f if line.strip()]
        low = 11 + 10 * group  # CACD groups 11-20, 21-30, ..., 51-
        assert names and all(low <= int(n.split("_")[0]) for n in names), (group, names)
    classifier = os.path.join(work, "checkpoints", "pre_trained", "alexnet_age")
    assert any(n.startswith("ckpt-") for n in os.listdir(classifier)), os.listdir(classifier)
