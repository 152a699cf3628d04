"""DESIGN.md's dependency rule: core imports neither Qt, app nor widgets; widgets never import app."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "pyqtgraph", "shiboken6")


def _imports(folder):
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module


def test_core_is_free_of_qt_app_and_widgets():
    bad = [(p.name, m) for p, m in _imports("core") if m.split(".")[0] in QT + ("app", "widgets")]
    assert not bad


def test_widgets_never_import_app():
    bad = [(p.name, m) for p, m in _imports("widgets") if m.split(".")[0] == "app"]
    assert not bad
