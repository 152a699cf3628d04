"""Settings for a window that must not read or change the user's: an INI file in a temporary
folder of our own, removed when the process ends.

Never point QSettings at a path we do not own: Qt saves by writing a temporary file and renaming
it over the path, which as root replaces a device such as /dev/null with a regular file."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings


def scratch_settings() -> QSettings:
    folder = tempfile.mkdtemp(prefix="margin-explorer-settings-")
    atexit.register(shutil.rmtree, folder, True)
    return QSettings(str(Path(folder) / "settings.ini"), QSettings.IniFormat)
