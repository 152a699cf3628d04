#!/usr/bin/env python3
"""Margin Explorer. `python main.py` opens the window; `python main.py --help` lists the
headless commands (run, info, presets) and the window's (demo, open)."""

import sys

if __name__ == "__main__":
    try:
        from app.cli import main
    except KeyboardInterrupt:  # Ctrl+C while the imports run: one line and 130, no traceback
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(main())
