"""Where the file dialogs open and the names they propose: the last folder the user chose, else the
documents folder (never the folder the app happened to start in, such as the repository), and
names that are safe slugs (no spaces, commas or parentheses)."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QStandardPaths

KEY = "last_folder"


def slug(name: str, fallback: str = "run") -> str:
    """``Two-layer ReLU network, blobs (modified)`` -> ``two-layer-relu-network-blobs-modified``."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    text = re.sub(r"-{2,}", "-", text).strip("-._")
    return text or fallback


def start_folder(settings) -> str:
    last = str(settings.value(KEY, "") or "") if settings is not None else ""
    if last and Path(last).is_dir():
        return last
    documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
    if documents and Path(documents).is_dir():
        return documents
    return str(Path.home())


def proposal(settings, name: str, suffix: str) -> str:
    """The path a save dialog proposes: the start folder and ``name`` as a slug with ``suffix``."""
    return str(Path(start_folder(settings)) / f"{slug(name)}{suffix}")


def remember(settings, path: str) -> None:
    """The folder of a chosen file is where the next dialog opens."""
    if settings is not None and path:
        settings.setValue(KEY, str(Path(path).parent))
