"""Writing files never destroys what is not ours (issue 16, items 1-5): the demo leaves /dev/null
and the user's settings alone; --out never deletes what is there and --overwrite replaces only a
run file that is not one of the run's inputs; a second writer is refused; a full disk and
SIGTERM end a run with a message and a file that says why. Child processes get real signals and
a real (tmpfs) full disk; every file is read back."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from margin_explorer.app.cli import main
from margin_explorer.core.datasets import gaussian_blobs, save_csv
from margin_explorer.core.errors import RunFileError
from margin_explorer.core.runfile import RunReader
from margin_explorer.core.runner import run_to_file
from tests.helpers import ROOT, config_for, mlp, open_when_it_has_records

MAIN = str(ROOT / "main.py")


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    env.update(extra)
    return env


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _small_run(path, steps=200):
    config = config_for(mlp(2, [8]), gaussian_blobs(40, 2, separation=4.0, noise=0.5, seed=0), steps=steps, lr=0.5,
                        rule="lyu_li")
    return run_to_file(config, path)


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ 1. the demo and /dev/null
def _watch(paths) -> dict:
    """What can be seen of ``paths`` (a file or a folder, recursively): names, kinds and mtimes."""
    seen = {}
    for root in paths:
        root = Path(root)
        if not os.path.lexists(root):
            seen[str(root)] = None
            continue
        items = [root] + (sorted(root.rglob("*")) if root.is_dir() and not root.is_symlink() else [])
        for item in items:
            st = os.lstat(item)
            seen[str(item)] = (stat.S_IFMT(st.st_mode), st.st_ino, st.st_rdev, st.st_mtime_ns, st.st_size)
    return seen


def test_the_demo_changes_nothing_outside_its_folder(tmp_path):
    """`main.py demo` as root once replaced the device /dev/null with its settings INI file."""
    home, config, scratch = tmp_path / "home", tmp_path / "config", tmp_path / "tmp"
    for folder in (home, config, scratch):
        folder.mkdir()
    real_home = Path(os.path.expanduser("~"))
    watched = [os.devnull, real_home / ".config" / "MarginExplorer", real_home / ".config" / "Margin Explorer",
               real_home / ".config" / "margin-explorer"]
    before = _watch(watched)
    git = ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all", "--ignored"]
    git_before = subprocess.run(git, capture_output=True, text=True, timeout=60).stdout
    shot = tmp_path / "x.png"
    proc = subprocess.run([sys.executable, MAIN, "demo", "--preset", "relu2-blobs", "--steps", "0",
                           "--screenshot", str(shot)], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env=_env(HOME=str(home), XDG_CONFIG_HOME=str(config), TMPDIR=str(scratch)))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "the demo replaced /dev/null"
    assert _watch(watched) == before
    assert subprocess.run(git, capture_output=True, text=True, timeout=60).stdout == git_before
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the window's scratch settings lived in the temporary folder and were removed at exit
    assert list(scratch.iterdir()) == []


# ------------------------------------------------------------------ 2. --out never deletes what is there
def test_out_refuses_an_existing_run_without_overwrite_and_replaces_it_with(tmp_path, capsys):
    path = tmp_path / "a.h5"
    _small_run(path, steps=200)
    before = _digest(path)
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "30", "--out", path)
    assert code == 2 and "already exists" in _one_error_line(err) and "--overwrite" in err
    assert _digest(path) == before
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "30", "--out", path, "--overwrite")
    assert code == 0, err
    with RunReader(path) as run:
        assert run.status == "finished" and run.final_step == 30 and run.metrics["step"][-1] == 30
        assert run.dataset.n == 100  # the preset's blobs, not the 40 points of the run replaced
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]  # no temporary file left beside it


@pytest.mark.parametrize("kind", ["text", "csv", "folder", "fifo", "device", "broken link", "hdf5"])
def test_overwrite_never_replaces_what_is_not_a_run(tmp_path, capsys, kind):
    path = tmp_path / "target"
    if kind == "text":
        path.write_text("notes\n")
    elif kind == "csv":
        save_csv(gaussian_blobs(10, 2, seed=0), path)
    elif kind == "folder":
        path.mkdir()
        (path / "inside.txt").write_text("x")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:  # a device node of our own, never /dev/null itself
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError:
            pytest.skip("mknod needs root")
    elif kind == "broken link":
        path.symlink_to(tmp_path / "nowhere.h5")
    elif kind == "hdf5":
        with h5py.File(path, "w") as f:
            f["data"] = np.arange(5)
    before = _watch([path])
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "10", "--out", path, "--overwrite")
    assert code == 2
    line = _one_error_line(err)
    expected = {"text": "not a Margin Explorer run", "csv": "not a Margin Explorer run", "folder": "is a folder",
                "fifo": "is a FIFO", "device": "is a device", "broken link": "broken link",
                "hdf5": "not a Margin Explorer run"}[kind]
    assert expected in line, line
    assert _watch([path]) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_a_run_never_writes_over_its_own_dataset_or_parent(tmp_path, capsys):
    data = tmp_path / "d.csv"
    save_csv(gaussian_blobs(20, 2, seed=1), data)
    before = _digest(data)
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "10", "--dataset", data, "--out", data, "--overwrite")
    assert code == 2 and "own dataset file" in _one_error_line(err)
    assert _digest(data) == before
    parent = tmp_path / "A.h5"
    _small_run(parent, steps=100)
    before = _digest(parent)
    link = tmp_path / "also-A.h5"
    link.symlink_to(parent)
    for out in (parent, link):  # by name and through a link: the same file
        code, err = _cli(capsys, "continue", parent, "--steps", "50", "--out", out, "--overwrite")
        assert code == 2 and "own parent run" in _one_error_line(err)
    assert _digest(parent) == before
    with RunReader(parent) as run:
        assert run.attrs["parent"] == "" and run.final_step == 100


def test_overwrite_through_a_link_replaces_the_run_and_keeps_the_link(tmp_path, capsys):
    old = tmp_path / "old.h5"
    _small_run(old, steps=100)
    link = tmp_path / "link.h5"
    link.symlink_to(old)
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "20", "--out", link, "--overwrite")
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == old
    with RunReader(old) as run:
        assert run.final_step == 20 and run.dataset.n == 100


def test_continue_refuses_negative_steps(tmp_path, capsys):
    parent = tmp_path / "A.h5"
    _small_run(parent, steps=50)
    for steps in ("-300", "-5"):
        code, err = _cli(capsys, "continue", parent, "--steps", steps, "--out", tmp_path / "B.h5")
        assert code == 2 and "--steps: must be >= 0" in _one_error_line(err) and err.rstrip().endswith(steps)
    assert not (tmp_path / "B.h5").exists()


def test_a_family_checks_every_member_file_before_writing_any(tmp_path, capsys):
    taken = tmp_path / "F-02.h5"
    taken.write_text("someone else's\n")
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "10", "--family", "seed=0:4", "--out", tmp_path / "F.h5")
    assert code == 2 and "F-02.h5: already exists" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F-02.h5"]
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "10", "--family", "seed=0:4", "--out",
                     tmp_path / "F.h5", "--overwrite")
    assert code == 2 and "F-02.h5: is not a Margin Explorer run" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F-02.h5"] and taken.read_text() == "someone else's\n"
    taken.unlink()
    assert _cli(capsys, "run", "relu2-blobs", "--steps", "10", "--family", "seed=0:4", "--out", tmp_path / "F.h5")[0] == 0
    code, err = _cli(capsys, "run", "relu2-blobs", "--steps", "20", "--family", "seed=0:4", "--out",
                     tmp_path / "F.h5", "--overwrite")
    assert code == 0, err
    for k in range(4):
        with RunReader(tmp_path / f"F-{k:02d}.h5") as run:
            assert run.final_step == 20 and run.family["index"] == k


# ------------------------------------------------------------------ 3. two writers, 5. SIGTERM
def _start(args, **kw):
    return subprocess.Popen([sys.executable, MAIN, *map(str, args)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _stop_with(proc, signum, timeout=60):
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_a_second_writer_is_refused_and_sigterm_stops_the_first(tmp_path):
    path = tmp_path / "shared.h5"
    first = _start(["run", "relu2-blobs", "--steps", "0", "--out", path])
    try:
        reader = open_when_it_has_records(path)
        assert reader is not None, "the first writer never flushed records"
        reader.close()
        second = subprocess.run([sys.executable, MAIN, "run", "relu2-blobs", "--steps", "10", "--out", str(path)],
                                env=_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "already exists" in _one_error_line(second.stderr)
        third = subprocess.run([sys.executable, MAIN, "run", "relu2-blobs", "--steps", "10", "--out", str(path),
                                "--overwrite"], env=_env(), capture_output=True, text=True, timeout=120)
        assert third.returncode == 2 and "another program is writing this run" in _one_error_line(third.stderr)
        # the writer holds a lock for its whole run: HDF5 itself will not open the file to write
        probe = subprocess.run([sys.executable, "-c", f"import h5py; h5py.File({str(path)!r}, 'r+')"],
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "unable to lock file" in probe.stderr
        assert first.poll() is None, "the first writer died"
    finally:
        code, out, err = _stop_with(first, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err, err
    assert "stopped" in out and "terminated (SIGTERM)" in out
    with RunReader(path) as run:
        assert run.status == "stopped" and run.status_reason == "terminated (SIGTERM)"
        assert run.n_records > 1 and run.metrics["step"][-1] == run.final_step > 0
        assert run.dataset.n == 100 and run.attrs["parent"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.h5"]


def _wait_for_progress(proc, timeout=120):
    """Block until the child prints its first progress line (it is then writing its file)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if line.startswith("step "):
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no progress line (exit {proc.poll()})")


def test_sigterm_stops_continue_and_a_family_between_chunks(tmp_path):
    parent = tmp_path / "A.h5"
    _small_run(parent, steps=100)
    cont = _start(["continue", parent, "--steps", "0", "--out", tmp_path / "B.h5"])
    _wait_for_progress(cont)
    time.sleep(0.5)
    code, out, err = _stop_with(cont, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err, err
    with RunReader(tmp_path / "B.h5") as run:
        assert run.status == "stopped" and run.status_reason == "terminated (SIGTERM)"
        assert run.attrs["start_step"] == 100 and run.final_step > 100 and run.metrics["step"][-1] == run.final_step
    family = _start(["run", "relu2-blobs", "--steps", "0", "--family", "seed=0:3", "--out", tmp_path / "F.h5"])
    _wait_for_progress(family)
    time.sleep(0.5)
    code, out, err = _stop_with(family, signal.SIGTERM)
    assert code == 0 and "Traceback" not in err, err
    steps = set()
    for k in range(3):
        with RunReader(tmp_path / f"F-{k:02d}.h5") as run:
            assert run.status == "stopped" and run.status_reason == "terminated (SIGTERM)"
            steps.add(run.final_step)
    assert len(steps) == 1 and steps.pop() > 0


def test_ctrl_c_while_the_imports_run_exits_130_with_one_line(tmp_path):
    """Ctrl+C once the child is importing our modules (numpy's extension is loaded, the run not yet
    started). Python's own start-up (its site module, the first ~50 ms) is out of the app's reach."""
    proc = _start(["run", "relu2-blobs", "--steps", "0", "--out", tmp_path / "early.h5"])
    maps = Path(f"/proc/{proc.pid}/maps")
    if not maps.exists():
        proc.kill()
        proc.communicate()
        pytest.skip("needs /proc to see the child's imports")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and "_multiarray_umath" not in maps.read_text():
        time.sleep(0.002)
    code, out, err = _stop_with(proc, signal.SIGINT)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert code == 130 and err == "interrupted\n", (code, err)
    assert not (tmp_path / "early.h5").exists()


def test_ctrl_c_during_a_run_stops_it_gracefully(tmp_path):
    proc = _start(["run", "relu2-blobs", "--steps", "0", "--out", tmp_path / "run.h5"])
    _wait_for_progress(proc)
    code, out, err = _stop_with(proc, signal.SIGINT)
    assert code == 0 and "Traceback" not in err, err
    with RunReader(tmp_path / "run.h5") as run:
        assert run.status == "stopped" and run.status_reason == "interrupted (Ctrl+C)"


# ------------------------------------------------------------------ 4. a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A folder on a tmpfs of ``size`` (root only; skipped where mount is refused)."""
    mounted = []

    def make(size: str) -> Path:
        folder = tmp_path / f"disk-{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _full_disk_run(folder, force_hdf5_error=False):
    """`run` of 2,000 points (a wide sample_margins record: ~16 kB a step) onto ``folder``."""
    path = folder / "run.h5"
    data = folder.parent / "points.csv"
    save_csv(gaussian_blobs(2000, 2, separation=4.0, noise=0.5, seed=0), data)
    code = ("import sys\n"
            + ("import margin_explorer.core.runfile as runfile\nrunfile.DISK_RESERVE_BYTES = -10**12  # skip the check: HDF5 hits ENOSPC\n"
               if force_hdf5_error else "")
            + "from margin_explorer.app.cli import main\n"
            # the numpy engine: its first chunks are small enough to be written before the disk fills (the
            # compiled engine's first chunk, ~600 steps of 16 kB records, is already larger than this disk)
            f"sys.exit(main(['run', 'relu2-blobs', '--steps', '0', '--backend', 'numpy', '--dataset', {str(data)!r}, "
            f"'--out', {str(path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    return proc, path


def test_a_full_disk_stops_the_run_with_a_message_and_a_failed_file(small_disk):
    proc, path = _full_disk_run(small_disk("8m"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    line = _one_error_line(proc.stderr)
    match = re.search(r"the disk is full.*the run stopped at step (\d+); the file holds records up to step (\d+)", line)
    assert match, line
    stopped, held = int(match.group(1)), int(match.group(2))
    with RunReader(path) as run:
        assert run.status == "failed" and "the disk is full" in run.status_reason
        assert int(run.metrics["step"][-1]) == held <= stopped
        # the last parameters written are those of the chunk that ended at or after the last record
        assert held <= run.final_step <= stopped and run.n_records > 100
        assert np.all(np.isfinite(run.final_params)) and np.any(run.final_params != 0)
        assert np.all(np.diff(run.metrics["step"]) > 0)


def test_a_write_that_fails_inside_hdf5_ends_without_a_crash(small_disk):
    """The space check bypassed: HDF5 itself meets ENOSPC. No second h5py call, no SIGSEGV."""
    proc, path = _full_disk_run(small_disk("4m"), force_hdf5_error=True)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    line = _one_error_line(proc.stderr)
    assert "the disk is full" in line and "the run stopped at step" in line, line
    assert "HDF5 failed inside a write" in line, line  # the path under test, not the space check
    assert "Exception ignored" not in proc.stderr
    try:
        with RunReader(path) as run:
            assert run.status in ("running", "failed")
    except RunFileError:
        pass  # a clean message is all a file HDF5 could not finish can give


def test_a_disk_too_full_to_start_is_refused_before_a_file_exists(small_disk):
    folder = small_disk("512k")
    proc = subprocess.run([sys.executable, MAIN, "run", "relu2-blobs", "--steps", "10", "--out", str(folder / "r.h5")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "cannot be created: the disk is full" in line and "MiB free" in line, line
    assert list(folder.iterdir()) == []
