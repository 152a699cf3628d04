"""Margin Explorer from Python: `import margin_explorer as mx` (docs/python-api.md).

This file is the installed package `margin_explorer` itself (pyproject.toml's package-dir maps it
here); the science is `margin_explorer.core`, the application `margin_explorer.app`, the Qt widgets
`margin_explorer.widgets`. Importing it loads no Qt: it names core/api.py's library face only.
"""

from .core import __version__
from .core.api import *  # noqa: F401,F403  (the library face, listed in core/api.py's __all__)
from .core.api import __all__ as _api_names

__all__ = [*_api_names, "__version__"]
