"""Keep freed memory for the next step's arrays instead of handing it back to the system.

glibc's malloc maps large arrays afresh and gives freed memory at the top of the heap back to the
system; its adaptive thresholds follow the sizes it sees, which copes at width 128, but at width
256 (133,000 parameters) a step with every metric recorded faulted its temporaries' pages back
in, every step. With the thresholds below none are (figures: docs/performance.md). Peak memory
is unchanged; only what the process keeps between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

MMAP_THRESHOLD = 32 << 20  # arrays below this come from the heap
TRIM_THRESHOLD = 128 << 20  # freed heap kept up to this much
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds, once per process; False where there is no
    glibc (macOS, Windows, musl: their allocators behave differently and are left alone)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _done
