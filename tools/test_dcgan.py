"""Command-line entry point; see facegan_tf/cli/test_dcgan.py for the flags (--help lists them)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import test_dcgan  # noqa: E402
from facegan_tf.cli.common import run  # noqa: E402

if __name__ == "__main__":
    run(test_dcgan.main)
