"""Entry point; flags in facegan_tf/cli/prepare_ipcgan_lists.py (--help lists them)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import prepare_ipcgan_lists  # noqa: E402

if __name__ == "__main__":
    prepare_ipcgan_lists.run()
