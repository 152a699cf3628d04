"""Presets: run configs with a description, stored as JSON in resources/presets/ (margin_explorer/presets/ in the wheel)."""

from __future__ import annotations

import re
from pathlib import Path

from .config import RunConfig, load_config
from .errors import ConfigError

# a checkout (and an editable install, which runs from it) keeps them in resources/presets; the
# wheel installs them as package data beside core, margin_explorer/presets (pyproject.toml)
_HERE = Path(__file__).resolve().parent
PRESET_DIR = next((folder for folder in (_HERE.parent / "resources" / "presets", _HERE.parent / "presets")
                   if folder.is_dir()), _HERE.parent / "resources" / "presets")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


PRESET_NAME = re.compile(r"[a-z0-9-]+")


def preset_path(name: str) -> Path:
    """The file of preset ``name``: a name (lowercase letters, digits, dashes), never a path, so
    that `--preset ../../x` cannot load any JSON on disk."""
    if not isinstance(name, str) or not PRESET_NAME.fullmatch(name):
        shown = name if len(str(name)) <= 80 else str(name)[:80] + "..."
        raise ConfigError(f"preset {shown!r} is not a preset name (lowercase letters, digits and dashes; "
                          f"available: {', '.join(preset_names())}); give a config file as a path")
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"preset {name!r} does not exist (available: {', '.join(preset_names())})")
    return path


def load_preset(name: str) -> RunConfig:
    config, _folder = load_config(preset_path(name))
    return config


def resolve_config(name_or_path: str) -> tuple[RunConfig, Path]:
    """A config file path, or the name of a preset."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".json" or "/" in name_or_path:
        return load_config(path)
    return load_config(preset_path(name_or_path))
