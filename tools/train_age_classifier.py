"""Entry point; flags in facegan_tf/cli/train_age_classifier.py (--help lists them)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facegan_tf.cli import train_age_classifier  # noqa: E402

if __name__ == "__main__":
    train_age_classifier.run()
