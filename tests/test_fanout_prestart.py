"""WorkerPool.prestart: a server process starts its pool before its first batch, which then runs on those workers."""
from __future__ import annotations


import psutil
import pytest

from api.services import fanout
from api.services.fanout import run_in_pool, shutdown_pools
from tests.fanout_tasks import payload


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_prestarted_workers_are_ready_and_serve_the_first_batch(method: str) -> None:
    shutdown_pools()
    try:
        pool = fanout.warm_pool(method)
        assert pool.prestart(2) == 2
        started = set(pool.pids())
        assert len(started) == 2 and all(psutil.pid_exists(p) for p in started)
        assert pool.prestart(2) == 2 and set(pool.pids()) == started  # idempotent: no new processes
        out = list(run_in_pool(payload, [(i, 100) for i in range(20)], processes=2, start_method=method))
        assert out == [payload(i, 100) for i in range(20)]
        assert set(pool.pids()) == started
    finally:
        shutdown_pools()


@pytest.mark.timeout(60)
def test_prestart_replaces_a_worker_that_died_since() -> None:
    shutdown_pools()
    try:
        pool = fanout.warm_pool("fork")
        assert pool.prestart(2) == 2
        victim = pool.pids()[0]
        psutil.Process(victim).kill()
        psutil.wait_procs([psutil.Process(victim)], timeout=5)
        assert pool.prestart(2) == 2 and victim not in pool.pids()
    finally:
        shutdown_pools()
