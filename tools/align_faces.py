"""Command-line entry point of facegan_tf.cli.align_faces (--help lists the flags)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import align_faces  # noqa: E402

if __name__ == "__main__":
    align_faces.run()
