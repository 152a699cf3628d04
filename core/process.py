"""Process tuning for programs that train: the command line, the window's training process and
the benchmarks call ``tune_process()`` when training starts. Library calls (Trainer.run, the
notebook API in core/api.py) never change anything process-wide: in a notebook that would
silently retune the user's whole kernel.

What it sets, and why (the figures are in docs/performance.md):
- every BLAS thread pool but numpy's at one thread (core/blas.py): two threaded OpenBLAS pools
  (numpy's and scipy's) fight for the cores and a product then waits many times longer;
- glibc malloc keeps freed memory (core/allocator.py): otherwise large temporaries' pages are
  faulted back in every step.
"""

from __future__ import annotations

from .allocator import keep_freed_memory
from .blas import one_threaded_pool


def tune_process() -> None:
    """Tune this process for training. Cheap to call again (nothing to do when nothing was
    imported since): a program calls it when training starts and may call it between chunks,
    so that a BLAS library imported later (torch, a metric's scipy routine) gets one thread too."""
    import scipy.linalg.blas  # noqa: F401  load scipy's OpenBLAS now, so its pool is tuned with the rest
    import scipy.linalg.lapack  # noqa: F401

    one_threaded_pool()
    keep_freed_memory()
