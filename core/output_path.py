"""Where a run file may be written: the one rule behind `run --out`, `continue --out`, a family's
member files and the window's Save as (docs/run-format.md, "Writing a run file").

Nothing that is there is deleted or truncated. A new run is created exclusively (O_CREAT|O_EXCL,
HDF5's "x" mode), so of two writers racing for one name the second gets a refusal, not the first
one's file. An existing path is replaced only when the caller says so (--overwrite, or a Save as
the user confirmed), and only when it is a regular file holding a Margin Explorer run that no
program is writing and that is not one of this run's own inputs (its dataset file, the parent run
of `continue`). Devices, folders, FIFOs, CSVs and any other file are never written over.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; HDF5's own checks remain
    fcntl = None

import h5py

from .errors import RunFileError

FORMAT = "margin-explorer-run"  # the file's `format` attribute (core/runfile.py writes it)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symbolic links included
    except OSError:  # one of them does not exist
        return os.path.realpath(a) == os.path.realpath(b)


def hold_writer_lock(path) -> int | None:
    """Take the shared flock a RunWriter holds for its whole run (see _locked_by_writer); returns
    the descriptor to close when the run ends (closing it releases the lock)."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _locked_by_writer(path: Path) -> bool:
    """True while another process holds the file for writing. A RunWriter holds a shared flock for
    its whole run (HDF5 drops its own lock once SWMR writing starts, so that readers can follow);
    the exclusive lock a writer needs then fails."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock


def _run_state(path: Path) -> str:
    """"run" (a Margin Explorer run no program is writing), "writing" (a writer has it open) or
    "other" for the regular file ``path``."""
    if not h5py.is_hdf5(path):
        return "other"
    try:
        with h5py.File(path, "r") as f:  # a reader's shared lock; readers following a run are no obstacle
            return "run" if f.attrs.get("format") == FORMAT else "other"
    except (OSError, RuntimeError) as exc:
        message = str(exc)
    if "unable to lock file" in message:  # a writer holds HDF5's exclusive lock (creating or closing)
        return "writing"
    if "already open for write" not in message:
        return "other"  # damaged, truncated: not a run we can vouch for
    # the superblock says "open for SWMR write": a live writer (it holds our shared lock), or one
    # that was killed; only then is a SWMR read tried (on a truncated file it retries for minutes)
    if _locked_by_writer(path):
        return "writing"
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return "run" if f.attrs.get("format") == FORMAT else "other"
    except (OSError, RuntimeError):
        return "other"


def check_output(path, *, overwrite: bool = False, inputs: dict | None = None) -> bool:
    """Refuse (RunFileError, one line) to write a run file at ``path`` unless it is new, or
    ``overwrite`` is given and it holds a run that may be replaced. ``inputs`` maps a role ("dataset
    file", "parent run") to a path the run reads; none of them is ever written. Returns True when
    an existing run will be replaced, False for a new file."""
    path = Path(path)
    for role, source in (inputs or {}).items():
        if source and _same_file(path, Path(source)):
            raise RunFileError(f"{path}: is this run's own {role}; write the run to another file")
    if str(path).endswith(os.sep) or path.is_dir():
        raise RunFileError(f"{path}: is a folder; give the run file's name (RUN.h5)")
    if not os.path.lexists(path):
        if not path.parent.is_dir():
            raise RunFileError(f"{path}: the folder {path.parent} does not exist")
        return False
    if not overwrite:
        raise RunFileError(f"{path}: already exists; choose a new name (--overwrite replaces a run file, "
                           "never anything else)")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise RunFileError(f"{path}: is a broken link; it is not replaced") from None
    if not stat.S_ISREG(mode):
        raise RunFileError(f"{path}: is {_kind(mode)}; a run file is never written over it")
    state = _run_state(path)
    if state == "writing":
        raise RunFileError(f"{path}: another program is writing this run right now; it is not replaced")
    if state != "run":
        raise RunFileError(f"{path}: is not a Margin Explorer run file; only a run file is replaced, "
                           "even with --overwrite")
    return True


def existing(paths) -> list[Path]:
    """Those of ``paths`` that exist (a family's member files the user is about to replace)."""
    return [Path(p) for p in paths if os.path.lexists(p)]
