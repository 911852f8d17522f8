"""Command-line entry point; see facegan_tf/cli/fetch_fid_weights.py for the flags."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import fetch_fid_weights  # noqa: E402

if __name__ == "__main__":
    fetch_fid_weights.run()
