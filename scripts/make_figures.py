"""Run every preset at full length, render its figure into docs/figures/ with `main.py render`,
and write docs/figures/claims.md with each claim's verdict (`main.py check`).

    python scripts/make_figures.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from margin_explorer.core.presets import load_preset, preset_names  # noqa: E402

# the plots that show each preset's claim, and whether a log step axis shows it best
FIGURES = {
    "linear-separable": ("margin,angle,norm", False),
    "linear-constant-step": ("angle,norm,margin", True),
    "linear-gap-test": ("accuracy,margin,angle", True),
    "relu2-blobs": ("margin,kkt,norm", False),
    "relu2-constant-step": ("loss,norm,margin", True),
    "relu3-moons": ("margin,kkt,norm", False),
    "alignment-relu-xor": ("angle,margin,norm", True),
    "residual-gelu-moons": ("margin,kkt,loss", False),
    "ensemble-shallow-fades": ("ensemble,margin,loss", True),
    "ensemble-shallow-persists": ("ensemble,margin,loss", True),
    "sign-descent-linf": ("angle,margin,norm", True),
    "coordinate-descent-l1": ("angle,margin,norm", True),
    "orthogonal-leaky-relu": ("rank,samples,margin", True),
    "orthogonal-relu": ("rank,samples,margin", True),
    "large-step-gelu": ("loss,margin,norm", True),
    "sgd-relu-blobs": ("margin,loss,norm", False),
    "lyu-li-figure1-loss-based": ("loss,margin,layers", True),
    "lyu-li-figure1-constant": ("loss,margin,layers", True),
    "ji-telgarsky-margin-distribution": ("distribution,samples,margin", True),
}
# figures of several presets' runs overlaid (the window's compare view): made when all were run
TOGETHER = {
    "lyu-li-figure1": (("lyu-li-figure1-loss-based", "lyu-li-figure1-constant"), "loss,margin,layers", True),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="preset names")
    args = parser.parse_args(argv)
    out = ROOT / "docs" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Claims checked on the full-length presets", "",
             "Written by `python scripts/make_figures.py`; each run is `python main.py run PRESET` at the "
             "preset's full length, judged by `python main.py check`.", ""]
    names = args.only or preset_names()
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            run = Path(folder) / f"{name}.h5"
            subprocess.run([sys.executable, str(ROOT / "main.py"), "run", name, "--out", str(run)], check=True,
                           cwd=ROOT, capture_output=True)
            plots, log_x = FIGURES.get(name, ("margin,norm,angle", False))
            command = [sys.executable, str(ROOT / "main.py"), "render", str(run), "--plots", plots, "--out",
                       str(out / f"{name}.png"), "--width", "1500"]
            subprocess.run(command + (["--log-x"] if log_x else []), check=True, cwd=ROOT, capture_output=True)
            check = subprocess.run([sys.executable, str(ROOT / "main.py"), "check", str(run)], cwd=ROOT,
                                   capture_output=True, text=True)
            config = load_preset(name)
            lines += [f"## {config.name}", "", f"![{name}]({name}.png)", "", config.description, "", "```",
                      check.stdout.strip(), "```", ""]
            print(f"{name}: done", flush=True)
        for figure, (presets, plots, log_x) in TOGETHER.items():
            if all(p in names for p in presets):
                command = [sys.executable, str(ROOT / "main.py"), "render", *(str(Path(folder) / f"{p}.h5") for p in presets),
                           "--plots", plots, "--out", str(out / f"{figure}.png"), "--width", "1500"]
                subprocess.run(command + (["--log-x"] if log_x else []), check=True, cwd=ROOT, capture_output=True)
                print(f"{figure}: done", flush=True)
    if not args.only:
        (out / "claims.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
