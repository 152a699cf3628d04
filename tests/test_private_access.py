"""No module of core/ reads or writes another module's underscore attributes (issue #19): a
module's private names (``_x``: its functions, classes, methods, class attributes and the
attributes its methods set on ``self``) are used through ``self``/``cls`` or within the module
that defines them, never from another module. Checked on the source with ast, across the
module boundaries of core/."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.Module) -> set:
    """The underscore names a module defines: defs, classes, assignments, and self/cls attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _private(n)}


# underscore names that are public by their library's own documentation
DOCUMENTED = {"os._exit"}  # exit at once, without cleanup: what a child that must not outlive its parent does


def violations(source: str, filename: str) -> list[str]:
    """Each ``obj._name`` in ``source`` where obj is not self/cls and the module does not define _name;
    and each ``from module import _name``."""
    tree = ast.parse(source, filename)
    own = _own_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in own or ast.unparse(node) in DOCUMENTED:
                continue
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{filename}:{node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}")
    return found


def test_no_core_module_reaches_into_another_modules_private_attributes():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        found += violations(path.read_text(), str(path.relative_to(CORE.parent)))
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_should():
    """A member's private rows written from another module (as core/family_records.py did), a
    private function imported, and a private attribute read on any object but self: each found;
    the module's own private names, through self or not, are not."""
    source = """
from .trainer import _helper

class Own:
    def __init__(self):
        self._rows = []

    def merge(self, other):
        other._rows.extend(self._rows)  # the same module's attribute: allowed

def append(member, rows):
    member._wall = 1.0
    member._rows.extend(rows)
    return member.net._cache
"""
    found = violations(source, "m.py")
    assert found == ["m.py:2: from .trainer import _helper", "m.py:12: member._wall", "m.py:14: member.net._cache"], found
