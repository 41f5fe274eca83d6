"""The sweep runner gives the same numbers whatever executor runs the tasks."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from tinyntk import sweep
from tinyntk.experiments import train_task

TASKS = [dict(n=6, d=4, k=1, L=1, m=m, seed=s, c=4.0, steps=5, record_every=5, probes=("distance",))
         for m in (16, 32) for s in (0, 1)]


def _key(results):
    return [(r["m"], r["seed"], r["loss"], r["distance"]) for r in results]


def test_serial_threads_and_processes_agree_bitwise():
    serial = sweep.run(train_task, TASKS, jobs=1)
    threads = sweep.run(train_task, TASKS, executor=ThreadPoolExecutor(2))
    processes = sweep.run(train_task, TASKS, jobs=2)
    assert _key(serial) == _key(threads) == _key(processes)
    assert [r["m"] for r in serial] == [t["m"] for t in TASKS]    # results come in task order


def test_dask_local_cluster_agrees():
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed "
                                      "(optional extra: pip install tinyntk[distributed])")
    serial = sweep.run(train_task, TASKS[:2], jobs=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sweep.run(train_task, TASKS[:2], executor=client.get_executor())
    assert _key(serial) == _key(remote)


def test_bad_jobs():
    with pytest.raises(ValueError, match="jobs"):
        sweep.run(train_task, TASKS, jobs=0)
