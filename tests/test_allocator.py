"""Freed memory is kept for the next step's temporaries (core/allocator.py): counted in page
faults, which is what the fix removes (a wall-clock bar would be flaky)."""

import platform
import subprocess
import sys
import textwrap

import pytest

ROOT = __file__.rsplit("/tests/", 1)[0]
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# two 264 kB temporaries a step, freed together: glibc's defaults give their pages back every time
PROBE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from margin_explorer.core.allocator import keep_freed_memory
    if sys.argv[1] == "kept":
        assert keep_freed_memory()
    u, v = np.ones(33_000), np.zeros(33_000)
    for _ in range(10):  # settle
        d, s = u - v, u + v
        del d, s
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        d, s = u - v, u + v
        del d, s
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_a_steps_large_temporaries_no_longer_fault_their_pages_in_every_step():
    default, kept = _faults("default"), _faults("kept")
    # glibc's defaults: each step maps or trims ~2 x 65 pages again; kept: next to none
    assert default > 200 * 60, default
    assert kept < 50, kept


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_command_line_keeps_freed_memory_and_a_library_call_does_not(monkeypatch, tmp_path):
    from margin_explorer.app.cli import main
    from margin_explorer.core import allocator
    from margin_explorer.core.architecture import mlp
    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.trainer import Trainer

    monkeypatch.setattr(allocator, "_done", False)  # as if nothing had set it in this process yet
    Trainer(RunConfig(mlp(2, [4]))).run(1)
    assert not allocator._done  # a library call: the process's malloc is the program's to set
    assert main(["run", "relu2-blobs", "--steps", "2", "--out", str(tmp_path / "run.h5")]) == 0
    assert allocator._done
