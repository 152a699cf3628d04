"""DESIGN.md's dependency rule, as import-linter contracts in pyproject.toml ([tool.importlinter]):
core imports neither Qt, app nor widgets; widgets never import app; the library face loads no Qt;
the engines (core/engines/) never import the driver (core/trainer.py) or what drives it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _installed_layout(folder: Path) -> Path:
    """The wheel's margin_explorer/ tree, copied from the checkout (pyproject.toml's package-dir):
    import-linter reads a package's modules from its folder, and the checkout's folders are only a
    package once mapped (an editable install maps them in memory, which it does not see)."""
    package = folder / "margin_explorer"
    package.mkdir()
    shutil.copy(ROOT / "core" / "_namespace" / "__init__.py", package / "__init__.py")
    skip = shutil.ignore_patterns("__pycache__", "_namespace")
    for name in ("core", "app", "widgets"):
        shutil.copytree(ROOT / name, package / name, ignore=skip)
    return folder


def _lint_imports(folder: Path) -> subprocess.CompletedProcess:
    program = Path(sys.executable).with_name("lint-imports")
    command = [str(program)] if program.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run([*command, "--no-cache", str(ROOT / "pyproject.toml")], cwd=folder, text=True,
                          capture_output=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)},
                          timeout=300)


def test_the_import_contracts_hold(tmp_path):
    result = _lint_imports(_installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout  # every contract was read and checked


def test_a_broken_contract_is_caught(tmp_path):
    """The check can fail: widgets importing app, core importing Qt, or an engine importing the
    driver (here through core/step_rule.py, which the engines import) break it."""
    folder = _installed_layout(tmp_path)
    with open(folder / "margin_explorer" / "widgets" / "legend.py", "a") as out:
        out.write("\nfrom margin_explorer.app import cli  # noqa\n")
    with open(folder / "margin_explorer" / "core" / "api.py", "a") as out:
        out.write("\nimport PySide6  # noqa\n")
    with open(folder / "margin_explorer" / "core" / "step_rule.py", "a") as out:
        out.write("\nfrom margin_explorer.core import trainer  # noqa\n")
    result = _lint_imports(folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "4 broken" in result.stdout, result.stdout  # widgets', core's, the face's and the engines' contracts


def test_import_margin_explorer_loads_no_qt():
    code = ("import sys, margin_explorer as mx; mx.preset('relu2-blobs'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path("/"), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_package_folder_goes_into_the_wheel():
    """pyproject.toml lists the packages one by one (the folders map onto margin_explorer.*): a
    new subpackage left out of the list is missing from the wheel, though an editable install finds it."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    for top, name in (("core", "margin_explorer.core"), ("app", "margin_explorer.app"),
                      ("widgets", "margin_explorer.widgets")):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            if parts and parts[0] == "_namespace":
                continue
            assert ".".join((name, *parts)) in listed, f"{init.parent} is not in pyproject.toml's packages"
