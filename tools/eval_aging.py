"""Entry point; flags in facegan_tf/cli/eval_aging.py (--help lists them)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import eval_aging  # noqa: E402

if __name__ == "__main__":
    eval_aging.run()
