"""Entry point; flags in facegan_tf/cli/test_ipcgan.py (--help lists them)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import test_ipcgan  # noqa: E402

if __name__ == "__main__":
    test_ipcgan.run()
