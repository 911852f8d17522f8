"""Running a command-line tool inside the test process, as its console script would.

absl flags live in one global registry and several tools define flags of the same name, so
only one tool's flags can be registered at a time: `run_cli` removes the flags of the tool
modules imported before, imports the requested module afresh (which defines its flags),
parses ``args`` and runs the tool's ``run()`` with stdout/stderr captured; afterwards the
tool's flags are removed again, so the registry holds no tool flags between runs.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
from dataclasses import dataclass

from absl import flags

CLI_PACKAGE = "facegan_tf.cli."
TOOLS = (
    "align_faces", "apply_generator", "compute_fid", "convert_tf1_checkpoint", "eval_aging",
    "export_generator", "fetch_fid_weights", "prepare_ipcgan_lists", "prepare_utkface",
    "test_cyclegan", "test_dcgan", "test_ipcgan", "train_age_classifier", "train_cgan",
    "train_cyclegan", "train_dcgan", "train_ipcgan",
)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _forget_tool_flags() -> None:
    values = flags.FLAGS
    for module_name, module_flags in list(values.flags_by_module_dict().items()):
        if not module_name.startswith(CLI_PACKAGE) or module_name.endswith(".common"):
            continue
        for flag in list(module_flags):
            for name in {flag.name, flag.short_name} - {None}:
                if name in values:
                    delattr(values, name)
        sys.modules.pop(module_name, None)
    for name in list(sys.modules):
        if name.startswith(CLI_PACKAGE) and not name.endswith(".common"):
            sys.modules.pop(name)


@contextlib.contextmanager
def _log_records_to(stream):
    """Points the log handlers that write to the process's stderr (absl's among them) at
    ``stream`` for the duration, as a tool's warnings reach its stderr."""
    from absl import logging as absl_logging

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    absl_handler = absl_logging.get_absl_handler()
    if absl_handler is not None:
        handlers.append(absl_handler.python_handler)
    stderr_streams = (sys.stderr, sys.__stderr__)
    moved = [(h, h.stream) for h in handlers if getattr(h, "stream", None) in stderr_streams]
    for handler, _ in moved:
        handler.setStream(stream)
    try:
        yield
    finally:
        for handler, previous in moved:
            handler.setStream(previous)


def run_cli(
    tool: str, *args: str, cwd: str | os.PathLike | None = None, capture_logs: bool = False
) -> Result:
    """Runs ``facegan_tf.cli.<tool>`` with ``args`` in-process; returns its exit code and
    captured output. ``cwd`` is entered for the run (relative defaults resolve there);
    ``capture_logs`` adds the log records (warnings) to the captured stderr."""
    _forget_tool_flags()
    flags.FLAGS.unparse_flags()
    module = importlib.import_module(CLI_PACKAGE + tool)
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    code = 0
    try:
        sys.argv = [f"tools/{tool}.py", *args]
        if cwd is not None:
            os.chdir(cwd)
        logs = _log_records_to(err) if capture_logs else contextlib.nullcontext()
        with logs, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                module.run()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        flags.FLAGS.unparse_flags()
        _forget_tool_flags()  # a tool module imported directly afterwards defines its own
    return Result(code, out.getvalue(), err.getvalue())
