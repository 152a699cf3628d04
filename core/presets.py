"""Presets: run configs with a description, stored as JSON in resources/presets/."""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, load_config
from .errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "resources" / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def preset_path(name: str) -> Path:
    path = PRESET_DIR / f"{name}.json"
    if not path.exists():
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
