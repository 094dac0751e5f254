"""The fan-out under fire: workers SIGKILLed at random instants, hundreds of times, under fork and forkserver.

Results are made large (up to 2 MB) so many kills land while a worker is
writing its answer, the instant that wedged multiprocessing.Pool for good.
Whatever is killed, no batch hangs (each test's timeout), no more tasks are
lost than workers were killed, every other result equals the direct
computation, and no process is left behind. No database is needed here.
"""
from __future__ import annotations

import random
import threading
import time

import psutil
import pytest

from api.services import fanout
from api.services.fanout import TaskFailure, run_in_pool, shutdown_pools
from tests.fanout_tasks import failing, nap, payload

KILLS = 200


def _children() -> set[int]:
    """Our live child processes, except multiprocessing's own helpers (one fork server, one resource
    tracker per process, started on first use of forkserver and kept: they run no task)."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            helper = any("multiprocessing.forkserver" in a or "multiprocessing.resource_tracker" in a
                         for a in p.cmdline())
            if p.status() != psutil.STATUS_ZOMBIE and not helper:
                out.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


class Killer(threading.Thread):
    """SIGKILLs a random worker of the pool every few milliseconds until told to stop."""

    def __init__(self, pool: fanout.WorkerPool, seed: int) -> None:
        super().__init__(daemon=True)
        self.pool, self.rng = pool, random.Random(seed)
        self.kills, self.halt = 0, threading.Event()
        self.victims: list[psutil.Process] = []

    def run(self) -> None:
        while not self.halt.is_set():
            self.halt.wait(self.rng.uniform(0.002, 0.04))
            pids = self.pool.pids()
            if not pids or self.halt.is_set():
                continue
            try:
                victim = psutil.Process(self.rng.choice(pids))
                victim.kill()
                self.victims.append(victim)
                self.kills += 1
            except psutil.Error:
                pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_random_kills_lose_only_the_killed_tasks(method: str) -> None:
    shutdown_pools()
    before = _children()
    rng = random.Random(20261201)
    pool = fanout.warm_pool(method)
    killer = Killer(pool, seed=7)
    batches = lost_total = ok_total = 0
    try:
        killer.start()
        while killer.kills < KILLS:
            sizes = [rng.choice((10, 50_000, 300_000, 2_000_000)) for _ in range(40)]
            args = [(i, size) for i, size in enumerate(sizes)]
            out = list(run_in_pool(payload, args, processes=2, start_method=method, task_timeout=30))
            assert len(out) == len(args)
            lost = [i for i, r in enumerate(out) if isinstance(r, TaskFailure)]
            assert all(out[i].code == "worker_lost" for i in lost)
            for i, r in enumerate(out):
                if not isinstance(r, TaskFailure):
                    assert r == payload(*args[i]), i
            batches += 1
            lost_total += len(lost)
            ok_total += len(out) - len(lost)
    finally:
        killer.halt.set()
        killer.join()
        psutil.wait_procs(killer.victims[-5:], timeout=5)  # a signal sent is not yet a process dead
    assert batches >= 2 and killer.kills >= KILLS and ok_total > 0
    # each death is charged to one task at most. Counted over the whole run, not per batch: a kill sent
    # as one batch ends may take effect (the process scheduled to die) only once the next has begun
    assert lost_total <= killer.kills
    # after the storm, a batch is whole again, and shutting down leaves nothing behind
    calm = list(run_in_pool(payload, [(i, 1000) for i in range(30)], processes=2, start_method=method))
    assert calm == [payload(i, 1000) for i in range(30)]
    shutdown_pools()
    assert _children() - before == set()
    print(f"{method}: {killer.kills} kills over {batches} batches, {lost_total} tasks lost")


@pytest.mark.timeout(60)
def test_leaving_a_batch_early_leaves_no_task_running(tmp_path) -> None:
    """A consumer that stops reading (a failed request) must not leave work for the next batch."""
    shutdown_pools()
    quick, slow = tmp_path / "quick", tmp_path / "slow"
    quick.mkdir()
    slow.mkdir()
    # while the first worker naps 2 s, the batch hands the second a 30 s task
    args = [(2, str(quick))] + [(30, str(slow))] * 6
    outcomes = run_in_pool(nap, args, processes=2, start_method="fork", task_timeout=60)
    next(outcomes)
    deadline = time.monotonic() + 5
    while not any(slow.iterdir()) and time.monotonic() < deadline:  # its pid note is written at once
        time.sleep(0.01)
    assert any(slow.iterdir())
    outcomes.close()
    sleepers = [psutil.Process(int(p.name)) for p in slow.iterdir() if psutil.pid_exists(int(p.name))]
    assert all(p.status() == psutil.STATUS_ZOMBIE for p in sleepers)
    # the next batch gets every one of its tasks
    assert list(run_in_pool(abs, [(-i,) for i in range(10)], processes=2, start_method="fork")) == list(range(10))
    shutdown_pools()


@pytest.mark.timeout(60)
def test_an_exception_of_the_task_is_raised_and_the_pool_recovers() -> None:
    shutdown_pools()
    with pytest.raises(ValueError, match="on purpose"):
        list(run_in_pool(failing, [(i,) for i in range(8)], processes=2, start_method="fork"))
    assert list(run_in_pool(failing, [(i,) for i in range(3)], processes=2, start_method="fork")) == [0, 1, 2]
    shutdown_pools()
