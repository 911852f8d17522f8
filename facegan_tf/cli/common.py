"""What every command-line tool shares: user-error handling and flag helpers."""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from facegan_tf.training.guards import NonFiniteLossError, TrainingInterrupted

#: Exceptions that signal a user mistake (bad flag, bad file); printed as one line.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, KeyError)


def run(main) -> None:
    """Runs ``main`` under absl; a user error becomes one line on stderr and exit code 2.

    A non-finite training loss exits with code 3 and Ctrl-C with 130, each with one line.

    Set ``FACEGAN_TRACEBACK=1`` to see the full traceback instead. ``--help``, ``--helpshort``
    and ``--helpfull`` print the flags and exit 0.
    """

    def guarded(argv):
        try:
            return main(argv)
        except NonFiniteLossError as error:
            if os.environ.get("FACEGAN_TRACEBACK"):
                raise
            sys.stderr.write(f"error: {error}\n")
            sys.exit(3)
        except USER_ERRORS as error:
            if os.environ.get("FACEGAN_TRACEBACK"):
                raise
            message = str(error).strip() or type(error).__name__
            if isinstance(error, KeyError):
                message = f"missing key {message}"
            sys.stderr.write(f"error: {message}\n")
            sys.exit(2)
        except TrainingInterrupted as interrupted:
            sys.stderr.write(f"{interrupted}\n")
            sys.exit(130)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            sys.exit(130)

    # --help lists the flags of the program being run; they are defined in the cli module,
    # so make them key flags of the started script.
    for flag in flags.FLAGS.get_flags_for_module(main.__module__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules.get("__main__")
    if main_module is not None and sys.modules[main.__module__].__doc__:
        main_module.__doc__ = sys.modules[main.__module__].__doc__
    try:
        app.run(guarded)
    except SystemExit as exit_:
        # absl ends --help with status 1; asking for help is not a failure.
        if exit_.code == 1 and asked_for_help(sys.argv[1:]):
            sys.exit(0)
        raise


HELP_FLAGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull",
              "--helpxml", "-helpxml", "-?", "-h")


def asked_for_help(args) -> bool:
    """True when the command line asks absl for its flag listing."""
    return any(arg in HELP_FLAGS for arg in args)


#: Set to 1 to see TensorFlow's own start-up and runtime log lines (hidden by default).
TF_LOG_ENV = "FACEGAN_TF_LOG"


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and enumerates its devices with stderr silenced.

    On a machine without a GPU, TensorFlow's C++ runtime prints lines such as "Could not find
    cuda drivers on your machine" and "oneDNN custom operations are on" while it starts; they
    are written before its log level applies, so ``TF_CPP_MIN_LOG_LEVEL`` alone does not
    hide them. Errors still surface as Python exceptions. ``FACEGAN_TF_LOG=1`` shows
    TensorFlow's logs unchanged.
    """
    if os.environ.get(TF_LOG_ENV, "").strip() not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        _quiet_python_loggers()
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        saved = os.dup(2)
    except OSError:
        saved = None
    if saved is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    _quiet_python_loggers()


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its start-up chatter and hides its info/warning logs in tool
    output (``FACEGAN_TF_LOG=1`` keeps them). Tools call it before anything imports
    TensorFlow."""
    import_tensorflow_quietly()


def _quiet_python_loggers() -> None:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.WARNING)


def first_set(canonical: str, *aliases: str, flag_values=None):
    """Value of an alias group: the flag of the group given on the command line (aliases
    first, then ``canonical``), else the default of ``canonical``, the original's flag."""
    values = flags.FLAGS if flag_values is None else flag_values
    for name in (*aliases, canonical):
        if values[name].present:
            return values[name].value
    return values[canonical].value


def restart_demo(run_dir: str, kind: str, outputs, demo_dir: str, resume_flag: str) -> bool:
    """A repeated ``--demo`` starts over: when ``run_dir`` holds an earlier demo run of
    ``kind``, the demo's output folders ``outputs`` are removed (its data is kept) and one line
    says so. Returns True when an earlier run was replaced."""
    import shutil

    from facegan_tf.training.checkpointing import read_run_info

    info = read_run_info(run_dir) if os.path.isdir(run_dir) else None
    if info is None or info.get("kind") != kind:
        return False
    for folder in outputs:
        if os.path.isdir(folder):
            shutil.rmtree(folder)
    print(
        f"demo: starting a fresh run in {demo_dir} (the earlier demo run there was replaced; "
        f"next time, {resume_flag} resumes it instead and --demo_dir=DIR runs in another "
        "folder)"
    )
    return True


def flag_or_preset(name: str, preset: dict):
    """The flag's value, or ``preset[name]`` when the flag was not given on the command line
    (how ``--demo`` presets apply without overriding what the user typed)."""
    if not flags.FLAGS[name].present and name in preset:
        return preset[name]
    return flags.FLAGS[name].value
