"""Run a sweep (widths × seeds × n …) on any ``concurrent.futures.Executor``.

A sweep is a function and a list of tasks (plain dicts that carry their own seed), so the
results do not depend on which worker ran which task: a process pool, a thread pool, or a
Dask cluster give identical numbers.

    >>> results = run(my_function, [{"m": 64, "seed": 0}, {"m": 128, "seed": 0}], jobs=2)

On a cluster, pass Dask's executor::

    from distributed import Client
    client = Client("scheduler-address:8786")
    results = run(my_function, tasks, executor=client.get_executor())

``my_function`` must be importable by the workers (a module-level function).
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor


def default_jobs() -> int:
    """One worker per core (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run(fn, tasks, executor: Executor | None = None, jobs: int | None = None) -> list:
    """``[fn(**task) for task in tasks]``, computed on ``executor`` (results in task order).

    Without an executor: serially when ``jobs == 1``, else on a local process pool of
    ``jobs`` workers (default: one per core).  Each worker limits BLAS to one thread so
    that ``jobs`` workers do not oversubscribe the cores.
    """
    tasks = [dict(t) for t in tasks]
    if executor is None:
        jobs = default_jobs() if jobs is None else int(jobs)
        if jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs}")
        if jobs == 1 or len(tasks) <= 1:
            return [fn(**t) for t in tasks]
        with ProcessPoolExecutor(max_workers=jobs, initializer=_one_blas_thread) as pool:
            return list(pool.map(_call, [fn] * len(tasks), tasks))
    return list(executor.map(_call, [fn] * len(tasks), tasks))


def _call(fn, task):
    return fn(**task)


def _one_blas_thread() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
