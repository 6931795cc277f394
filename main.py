"""Generative Studio launcher: ``python main.py --help``."""

import sys

from studio.ui.app import main

if __name__ == "__main__":
    sys.exit(main())
