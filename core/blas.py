"""One multi-threaded BLAS pool per process.

numpy's and scipy's wheels each bundle their own OpenBLAS, each with its own thread pool. After
a call an OpenBLAS helper thread spins for a while waiting for the next one, so once both pools
have worked, their helpers and the main thread contend for the cores, and every product waits
on a descheduled helper: on 2 cores a residual GELU network trained many times slower
(docs/performance.md). Every BLAS pool but numpy's gets one thread for the process, scipy's
LAPACK for the spectral certificate and the KKT snapshots included; numpy's keeps its threads for
the products outside the training loop, and the numpy engine steps on one (``one_blas_thread``).

Programs apply this through core/process.py ``tune_process``; library calls leave the pools
alone. ``one_threaded_pool`` rescans the loaded libraries (threadpoolctl) only when modules were
imported since its last call: a new BLAS comes with an extension module's import.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager

_modules_seen = -1


def one_threaded_pool() -> None:
    """Give every BLAS thread pool but numpy's one thread (cheap when nothing new was imported)."""
    global _modules_seen
    if len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # without it the pools keep their threads: slower, never wrong
        return
    pools = ThreadpoolController().select(user_api="blas").lib_controllers
    if len(pools) < 2:
        return
    keep = numpy_pool(pools)
    for pool in pools:
        if pool is not keep and pool.num_threads != 1:
            pool.set_num_threads(1)


def scipy_wrappers(name: str):
    """scipy.linalg's ``blas`` or ``lapack`` wrappers (cheaper a call than numpy's checks and
    wrapping), imported on first use (the window's process never needs them). Their
    pool's threads are the program's to set (core/process.py), not a library call's."""
    return importlib.import_module(f"scipy.linalg.{name}")


def numpy_pool(pools):
    """The pool numpy's own products use: the library inside numpy's installation (numpy.libs,
    numpy/.dylibs), else the first loaded (numpy loads before scipy or torch can)."""
    import numpy

    home = os.path.dirname(os.path.abspath(numpy.__file__))
    for pool in pools:
        if os.path.abspath(pool.filepath).startswith(home):
            return pool
    return pools[0]


@contextmanager
def one_torch_thread(torch):
    """torch's intra-op pool at one thread for the block, restored after. Its OpenMP threads spin
    between ops like OpenBLAS's and fought numpy's BLAS for the two cores, on the autograd path
    and around the numpy engine's torch erf on layers above torch's 32,768-element grain
    (docs/performance.md). Restored after: a family's batched steps gain from them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def one_blas_thread():
    """numpy's BLAS pools at one thread for the block, restored after (threadpoolctl; without it
    nothing changes). The numpy engine steps in it, every network, whatever its products' sizes
    (NumpyNetwork.step_threads): a second OpenBLAS thread pays only on an idle machine, at most 2x
    there (a 100 x 512 by 512 x 512 product, 655 us on 2 threads against 1,255 on 1), and under
    load it waits on a descheduled helper: on the 2 shared cores (load 5-11) the digits preset's
    step took 15-17 ms on 2 threads against 5-6 on 1 (at load 10-12: 135-163 against 13), a
    residual GELU network of width 256 75-216 ms against 4-24, and a digits CNN step 4-10x the CPU
    time (docs/performance.md, BLAS threads).
    A rule by matrix size would keep the large products that lose most under load threaded."""
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


_scanned: list = [None, -1]  # threadpoolctl's controller, and len(sys.modules) when it scanned


def _controller():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl),
    rescanned only when modules were imported since: a scan costs ~2 ms, a step block's limit
    with a kept controller ~10 us."""
    if _scanned[1] != len(sys.modules):
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _scanned[:] = [ThreadpoolController(), len(sys.modules)]
    return _scanned[0]
