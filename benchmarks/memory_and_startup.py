"""Memory, disk and start-up (issue #6, bars 4 and 5).

- A 10^7-step headless run (`main.py run linear-separable --steps 10000000`; relu2-blobs on the
  compiled engine): peak resident memory
  of the process and the size of the run file it writes (bars: 200 MB, 100 MB), and how many
  records each decade of steps kept; on the numpy engine, then (where numba is installed) on the
  compiled engine, held to the same 200 MB bar. Beside it, numba's fixed cost in a fresh process
  (its import, its compiler's set-up, the cached kernels) and what of it stays resident once the
  compiler's clean code pages are dropped (core/idle_pages.py), as a program's training process
  does after each stage.
- The same run in the window (offscreen, plotting live, `--window`): the peak resident memory of
  the window's process and of its training process (bar: 200 MB for the app).
- The window's resident memory right after start-up, once the training process has listed the
  devices (`--window-start`), and whether torch was imported in the window's process.
- Start-up: wall time of `main.py demo --steps 0 --screenshot ...` from launch to exit, which
  includes showing the window and saving a screenshot (bar: on screen within 2.5 s).

    python benchmarks/memory_and_startup.py [--steps 10000000] [--skip-memory] [--window]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from margin_explorer.core.engines.compiled_engine import covers_platform  # noqa: E402 (no numba import)

PEAK_MB = 200  # the 10^7-step run's bar (issue #6), on either engine; the numpy engine measures 99-102 MB
COMPILED_PRESET = "relu2-blobs"  # issue #23's 10^7-step run (the numpy engine's: linear-separable, issue #6's)


def memory(steps: int, folder: Path, backend: str = "numpy",
           preset: str = "linear-separable") -> tuple[float, float, list]:
    """The run reports its own peak (RUSAGE_CHILDREN would report the largest of every child so far,
    e.g. a Qt window from the start-up measurement)."""
    out = folder / f"long-{backend}.h5"
    code = ("import resource, sys; from margin_explorer.app.cli import main; "
            f"main(['run', {preset!r}, '--steps', '{steps}', '--backend', {backend!r}, '--out', {str(out)!r}]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    peak_kb = int(result.stdout.split("PEAK")[-1])
    from margin_explorer.core.runfile import RunReader

    with RunReader(out) as run:
        steps_recorded = run.metrics["step"]
    per_decade = [int(((steps_recorded >= 10 ** k) & (steps_recorded < 10 ** (k + 1))).sum())
                  for k in range(0, len(str(steps)))]
    return peak_kb / 1024, out.stat().st_size / 1e6, per_decade


# numba's fixed cost in a training process: its import, then its compiler's set-up (the typing and
# target contexts, LLVM) on the first call of a kernel loaded from the cache, then the kernels; and
# what stays once the compiler's clean code pages are dropped (a library process drops none: the
# parts are measured whole)
NUMBA_COST = """
import resource, sys
import numpy, scipy.special, h5py
import margin_explorer
from margin_explorer.core.trainer import Trainer
from margin_explorer.core.idle_pages import release_compiler_pages
def rss():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
before = rss()
import numba
imported = rss()
from margin_explorer.core import compiled_kernels
compiled_kernels.clock_ns(1)
set_up = rss()
from margin_explorer.core.engines.compiled_engine import prepare
prepare()
loaded = rss()
release_compiler_pages()
print("KB", before, imported, set_up, loaded, rss(), sum(compiled_kernels.run_block.stats.cache_misses.values()))
"""


def numba_cost() -> tuple[float, float, float, float, float]:
    """(MB of numba's import, of its compiler's set-up on the first cached kernel, of the kernels
    themselves, their sum, what of it stays resident once the compiler's code pages are dropped)
    in a fresh process (the kernels compiled into the cache first)."""
    subprocess.run([sys.executable, "-c", "from margin_explorer.core import compiled_kernels as k; k.clock_ns(1); "
                    "from margin_explorer.core.engines.compiled_engine import prepare; prepare()"],
                   check=True, cwd=ROOT, capture_output=True)
    result = subprocess.run([sys.executable, "-c", NUMBA_COST], check=True, cwd=ROOT, capture_output=True, text=True)
    before, imported, set_up, loaded, released, misses = map(int, result.stdout.split("KB")[-1].split())
    assert misses == 0, "the kernels were compiled, not loaded from the cache"
    parts = [(imported - before) / 1024, (set_up - imported) / 1024, (loaded - set_up) / 1024]
    return (*parts, sum(parts), (released - before) / 1024)


def _peak_kb(pid: int) -> int:
    """The kernel's high-water mark of a process's resident memory (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except (FileNotFoundError, ProcessLookupError):
        return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def window_memory(steps: int, folder: Path) -> tuple[float, float, float]:
    """(window process peak MB, training process peak MB, seconds) for ``steps`` steps of the
    linear-separable run in the window with live plots, offscreen. The peaks are each process's
    own VmHWM, sampled while it lives (RUSAGE_CHILDREN would mix in any child's)."""
    code = f"from margin_explorer.app.main_window import demo; demo('linear-separable', {steps}, {str(folder / 'end.png')!r}, timeout=7200)"
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    window_kb = worker_kb = 0
    while proc.poll() is None:
        window_kb = max(window_kb, _peak_kb(proc.pid))
        for child in _children(proc.pid):  # the training worker (and multiprocessing's resource tracker)
            worker_kb = max(worker_kb, _peak_kb(child))
        time.sleep(0.5)
    if proc.returncode != 0:
        raise RuntimeError(f"the window exited with {proc.returncode}")
    return window_kb / 1024, worker_kb / 1024, time.perf_counter() - start


# a window as `main.py` opens it: shown, its worker warmed up, the device list asked for; it prints
# its own resident memory once the list has arrived
WINDOW_START = """
import sys
from PySide6.QtCore import QTimer
from margin_explorer.app.main_window import MainWindow, make_application
from margin_explorer.app.scratch_settings import scratch_settings

app = make_application()
window = MainWindow(settings=scratch_settings())
window.show()
window.controller.warm_up()
answered = []
window.controller.devicesReceived.connect(lambda d: (answered.append(d), QTimer.singleShot(200, app.quit)))
window.detect_devices()
QTimer.singleShot(60000, app.quit)
app.exec()
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
print("RSS_KB", rss, "TORCH", "torch" in sys.modules, "DEVICES", answered)
window.close()
"""


def window_start_memory() -> tuple[float, bool, str]:
    """(resident MB of the window's process after start-up and the device list, torch imported
    there?, the raw line)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    result = subprocess.run([sys.executable, "-c", WINDOW_START], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RSS_KB"))
    parts = line.split()
    return int(parts[1]) / 1024, parts[3] == "True", line


def startup(folder: Path, repeats: int = 3) -> list[float]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "main.py"), "demo", "--steps", "0", "--screenshot",
                        str(folder / f"start{i}.png")], check=True, cwd=ROOT, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--window", action="store_true", help="also run the steps in the window and measure it")
    parser.add_argument("--window-start", action="store_true", help="only the window's memory after start-up")
    args = parser.parse_args(argv)
    if args.window_start:
        rss, torch_loaded, _line = window_start_memory()
        print(f"window after start-up and the device list: {rss:.0f} MB resident; torch imported there: {torch_loaded}")
        return
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        times = startup(folder)
        print(f"start-up to a saved screenshot: {', '.join(f'{t:.2f}' for t in times)} s (bar: on screen within 2.5 s)")
        if not args.skip_memory:
            start = time.perf_counter()
            rss, size, per_decade = memory(args.steps, folder, "numpy")
            print(f"{args.steps:,}-step linear-separable run, numpy engine: peak memory {rss:.0f} MB "
                  f"(bar {PEAK_MB}), file "
                  f"{size:.1f} MB (bar 100), {time.perf_counter() - start:.0f} s; records per decade {per_decade}")
            if covers_platform() is True:
                numba_import, numba_set_up, kernels, fixed, kept = numba_cost()
                start = time.perf_counter()
                compiled_rss, size, per_decade = memory(args.steps, folder, "compiled", COMPILED_PRESET)
                print(f"numba's fixed cost in a training process: {fixed:.0f} MB (import {numba_import:.0f}, its "
                      f"compiler's set-up {numba_set_up:.0f}, the cached kernels {kernels:.0f}); {kept:.0f} MB "
                      "of it stay resident once the compiler's code pages are dropped")
                print(f"{args.steps:,}-step {COMPILED_PRESET} run, compiled engine: peak memory {compiled_rss:.0f} MB "
                      f"(bar {PEAK_MB}: "
                      f"{'within' if compiled_rss <= PEAK_MB else 'OVER'}; the numpy engine's {rss:.0f} + numba's "
                      f"whole {fixed:.0f} would be {rss + fixed:.0f}), file {size:.1f} MB (bar 100), "
                      f"{time.perf_counter() - start:.0f} s; records per decade {per_decade}")
        if args.window:
            gui, worker, seconds = window_memory(args.steps, folder)
            print(f"{args.steps:,} steps in the window: peak memory {gui:.0f} MB (window) + {worker:.0f} MB "
                  f"(training process), {seconds:.0f} s")


if __name__ == "__main__":
    main()
