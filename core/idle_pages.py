"""Hand back the resident pages of the compiler's code once the compiled kernels are loaded.

Loading the compiled engine's kernels from numba's cache runs LLVM (numba's code generator
sets up its target machine and links the cached object code), and that touches ~65 MB of
libllvmlite.so's code: the largest part of numba's fixed cost in a training process (memory
figures: docs/performance.md). Once the kernels are loaded the steps call none of it, yet the
pages stay counted in the process's resident memory. They are clean pages of the library file
(read-only, never written): ``madvise(MADV_DONTNEED)`` drops them from this process, and a later
compile (another dtype) reads back the ones it needs. Mappings with a written page (relocated
data) are left alone: dropping those would lose the writes.

The kernels load in stages, each touching LLVM anew: numba's import (LLVM's start-up), its
compiler's set-up on the first call of a cached kernel, then the kernels. In a program (after
core/process.py ``tune_process`` called ``release_in_this_process``) the compiled engine drops the
pages after each stage (``after_compiler_work``), so that they never all count at once: a
relu2-blobs run's peak from 204 MB to 153-155 (docs/performance.md). Library calls drop
nothing. Linux only (elsewhere nothing is done).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_MADV_DONTNEED = 4  # asm-generic/mman-common.h: x86, arm, riscv, power (only alpha differs)
COMPILER_LIBRARY = "libllvmlite"
_in_this_process = False  # a program's training process: release_in_this_process was called


def release_in_this_process() -> None:
    """Let the compiled engine drop the compiler's pages after its stages (core/process.py)."""
    global _in_this_process
    _in_this_process = True


def after_compiler_work() -> int:
    """``release_compiler_pages`` in a program's training process, else nothing (0)."""
    return release_compiler_pages() if _in_this_process else 0


def clean_mappings(fragment: str) -> list[tuple[int, int, int]]:
    """(start, end, resident bytes) of this process's mappings of a file whose path contains
    ``fragment``, not writable and with no page written: no private dirty or anonymous page, and
    none in swap (only a written page of a private file mapping goes to swap)."""
    found = []
    with open("/proc/self/smaps") as smaps:
        current = None
        for line in smaps:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:  # a mapping's first line
                if current is not None:
                    found.append(current)
                current = None
                path = head[5].strip() if len(head) > 5 else ""
                if fragment in path and "w" not in head[1]:
                    start, end = (int(part, 16) for part in head[0].split("-"))
                    current = [start, end, 0, True]
            elif current is not None:
                key = head[0]
                if key == "Rss:":
                    current[2] = int(head[1]) * 1024
                elif key in ("Private_Dirty:", "Anonymous:", "Swap:") and int(head[1]) != 0:
                    current[3] = False
        if current is not None:
            found.append(current)
    return [(start, end, rss) for start, end, rss, clean in found if clean]


def release_compiler_pages() -> int:
    """Drop the compiler's clean code pages from this process's resident memory (see the module
    docstring); the bytes that were resident there. 0 where llvmlite was never loaded or this is
    not Linux."""
    if not sys.platform.startswith("linux") or "llvmlite.binding" not in sys.modules:
        return 0
    try:
        mappings = clean_mappings(COMPILER_LIBRARY)
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except (OSError, ValueError, IndexError):  # no /proc (a sandbox), a layout not Linux's: keep them
        return 0
    madvise = libc.madvise
    madvise.argtypes, madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    released = 0
    for start, end, rss in mappings:
        if rss and madvise(start, end - start, _MADV_DONTNEED) == 0:
            released += rss
    return released
