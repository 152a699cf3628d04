"""Threads that fight each other for the cores: one multi-threaded BLAS pool per process
(core/blas.py; numpy's and scipy's wheels each bundle an OpenBLAS, and with both pools threaded a
residual network of width 128 trained ~15x slower), and one torch thread while the autograd
path steps on the CPU, or while the numpy engine's GELUs call torch's erf (its OpenMP threads
against numpy's BLAS: 3-7x slower)."""

import json
import subprocess
import sys
import textwrap

import pytest

ROOT = __file__.rsplit("/tests/", 1)[0]


def _pools_after(script: str) -> dict:
    """{'numpy': threads, 'others': [threads...], 'before': numpy's threads at the start} from a
    fresh interpreter running ``script``, which loads scipy's BLAS (the test process's pools were
    set by earlier tests)."""
    probe = textwrap.dedent("""
        import json, sys
        import numpy
        from threadpoolctl import ThreadpoolController
        from margin_explorer.core.blas import numpy_pool
        def pools():
            return ThreadpoolController().select(user_api="blas").lib_controllers
        before = numpy_pool(pools()).num_threads
        assert len(pools()) == 1, "the script must load scipy's BLAS itself"
    """) + textwrap.dedent(script) + textwrap.dedent("""
        now = pools()
        assert len(now) >= 2, "this check needs numpy's and scipy's separate BLAS libraries"
        mine = numpy_pool(now)
        print(json.dumps({"before": before, "numpy": mine.num_threads,
                          "others": [p.num_threads for p in now if p is not mine]}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode and "separate BLAS libraries" in out.stderr:
        pytest.skip("numpy and scipy share one BLAS library here: nothing can contend")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_command_line_gives_numpy_its_threads_and_every_other_pool_one(tmp_path):
    result = _pools_after(f"""
        from margin_explorer.app.cli import main
        assert main(["run", "relu2-blobs", "--steps", "3", "--out", {str(tmp_path / "run.h5")!r}]) == 0
    """)
    assert result["numpy"] == result["before"]
    assert result["others"] and all(n == 1 for n in result["others"]), result


def test_the_windows_training_process_tunes_its_pools():
    result = _pools_after("""
        import queue
        from margin_explorer.app.messages import Quit, StartRun
        from margin_explorer.app.worker import worker_main
        from margin_explorer.core.presets import load_preset
        config = load_preset("relu2-blobs")
        config.run.steps = 3
        commands, results = queue.Queue(), queue.Queue()
        commands.put(StartRun(config.to_json(), True))
        commands.put(Quit())
        worker_main(commands, results)
    """)
    assert result["others"] and all(n == 1 for n in result["others"]), result


LIBRARY_CALLS = """
    import scipy.linalg  # scipy's BLAS loaded, with its threads, before the library is called
    from threadpoolctl import threadpool_info
    from benchmarks.engine_vs_plain import make_config
    from margin_explorer.core.trainer import Trainer
    from margin_explorer.core import api
    start = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert any(n > 1 for n in start.values()), "this check needs a multi-threaded pool to leave alone"
    config = make_config(8, 3, "residual_gelu")
    config.recording.kkt = True
    Trainer(config).run(3)
    api.train(config, steps=3)
    assert len(api.train(config.with_family(seed=range(2)), steps=3)) == 2
    after = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    assert after == start, (start, after)
"""


def test_library_calls_leave_every_thread_pool_as_they_found_it():
    result = _pools_after(LIBRARY_CALLS)
    assert max(result["others"]) > 1, result  # scipy's pool kept its threads: nothing was retuned


def _torch_threads_while_stepping(spec, backend: str) -> tuple[list, int]:
    """(torch's thread count at each forward of a 3-step run started with 2, the count after)."""
    import torch

    from margin_explorer.core.config import RunConfig
    from margin_explorer.core.trainer import Trainer

    config = RunConfig(spec)
    config.run.backend = backend
    trainer = Trainer(config)
    seen = []
    net = trainer.engine.net  # the network the engine steps with
    outputs = net.outputs
    net.outputs = lambda theta, X: seen.append(torch.get_num_threads()) or outputs(theta, X)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        trainer.run(3)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return seen, after


def test_the_autograd_path_steps_on_one_torch_thread_and_gives_the_threads_back():
    from margin_explorer.core.architecture import mlp

    seen, after = _torch_threads_while_stepping(mlp(2, [8]), "torch")
    assert seen[:3] == [1, 1, 1]
    assert after == 2


def test_the_numpy_engine_steps_on_one_torch_thread_where_its_gelus_call_torch():
    from margin_explorer.core.architecture import mlp

    seen, after = _torch_threads_while_stepping(mlp(2, [8], "gelu"), "numpy")
    assert seen[:3] == [1, 1, 1]
    assert after == 2
    seen, _after = _torch_threads_while_stepping(mlp(2, [8]), "numpy")  # no torch op: its threads are left alone
    assert seen[:3] == [2, 2, 2]
