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

    Set ``FACEGAN_TRACEBACK=1`` to see the full traceback instead.
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
    app.run(guarded)


def quiet_tensorflow() -> None:
    """Hides TensorFlow's C++ and Python info/warning chatter in tool output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.WARNING)


def first_set(*names: str, default=None):
    """Value of the first of the given flags that was set on the command line (aliases)."""
    for name in names:
        if flags.FLAGS[name].present:
            return flags.FLAGS[name].value
    return default if default is not None else flags.FLAGS[names[0]].value


def flag_or_preset(name: str, preset: dict):
    """The flag's value, or ``preset[name]`` when the flag was not given on the command line
    (how ``--demo`` presets apply without overriding what the user typed)."""
    if not flags.FLAGS[name].present and name in preset:
        return preset[name]
    return flags.FLAGS[name].value
