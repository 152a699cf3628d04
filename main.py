#!/usr/bin/env python3
"""Margin Explorer. `python main.py` opens the window; `python main.py --help` lists the
headless commands (run, info, presets) and the window's (demo, open)."""

import os
import signal
import sys


def _interrupted(signum, frame):
    os.write(2, b"interrupted\n")
    os._exit(130)


if __name__ == "__main__":
    # Ctrl+C while the imports run ends the process at once with one line and 130: a
    # KeyboardInterrupt raised inside an extension's import surfaces as an ImportError traceback.
    # app.cli keeps this until a run starts (its own graceful handler), then restores it.
    signal.signal(signal.SIGINT, _interrupted)
    from margin_explorer.app.cli import main

    sys.exit(main())
