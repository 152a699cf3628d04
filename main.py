#!/usr/bin/env python3
"""Margin Explorer. `python main.py` opens the window; `python main.py --help` lists the
headless commands (run, info, presets) and the window's (demo, open)."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
