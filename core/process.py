"""Process tuning for programs that train: the command line, the window's training process and
the benchmarks call ``tune_process()`` when training starts. Library calls (Trainer.run, the
notebook API in core/api.py) never change anything process-wide: in a notebook that would
silently retune the user's whole kernel.

What it sets, and why (the figures are in docs/performance.md):
- every BLAS thread pool but numpy's at one thread (core/blas.py): two threaded OpenBLAS pools
  (numpy's and scipy's) fight for the cores and a product then waits many times longer;
- glibc malloc keeps freed memory (core/allocator.py): otherwise large temporaries' pages are
  faulted back in every step;
- the compiler's code pages leave the resident memory as the compiled engine loads its kernels
  (core/idle_pages.py): ~65 MB of numba's fixed cost that the steps never touch.
"""

from __future__ import annotations

import sys

from .allocator import keep_freed_memory
from .blas import one_threaded_pool
from .idle_pages import release_compiler_pages, release_in_this_process

_modules_seen = -1


def tune_process() -> None:
    """Tune this process for training. Cheap to call again (nothing to do when nothing was
    imported since): a program calls it when training starts and may call it between chunks,
    so that a BLAS library imported later (torch, a metric's scipy routine) gets one thread too."""
    import scipy.linalg.blas  # noqa: F401  load scipy's OpenBLAS now, so its pool is tuned with the rest
    import scipy.linalg.lapack  # noqa: F401

    global _modules_seen
    one_threaded_pool()
    keep_freed_memory()
    release_in_this_process()
    if len(sys.modules) != _modules_seen:  # a compile since (numba imports modules as it compiles)
        _modules_seen = len(sys.modules)
        release_compiler_pages()
