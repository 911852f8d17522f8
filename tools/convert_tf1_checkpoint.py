"""Command-line entry point of facegan_tf.cli.convert_tf1_checkpoint (--help lists the flags)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import convert_tf1_checkpoint  # noqa: E402

if __name__ == "__main__":
    convert_tf1_checkpoint.run()
