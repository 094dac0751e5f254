"""End to end through gunicorn: the two hangs users saw (issue 9), as they saw them.

1. A pool worker SIGKILLed at a random instant of `POST /backtest/all`
   (often while it sends its result): the answer still comes, at most that
   crypto is lost, the rest equal a quiet run, and no process is left behind.
2. A sweep whose database connections are cut mid-way answers 503; the next
   `/all` is not poisoned by the sweep's leftover work.
"""
from __future__ import annotations

import random
import threading
import time

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.db import repository as repo
from tests.served import request_json as _request, running_gunicorn

ALL = "/api/crypto/backtest/all"


def _strip(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


def _pool_workers(proc) -> list[psutil.Process]:
    """Processes forked by gunicorn's workers: the pool workers."""
    return [c for w in psutil.Process(proc.pid).children() for c in w.children()]


def _wait_dead(p: psutil.Process, seconds: float = 10) -> None:
    """Until the signalled process is a zombie or gone (a signal sent is not yet a process dead)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.005)


def _alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_pool_worker_killed_at_random_instants_of_a_request(db_url, demo_db) -> None:
    rng = random.Random(9)
    body = {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False}
    seen: set[int] = set()
    with running_gunicorn(db_url, WEB_CONCURRENCY="1", TASK_TIMEOUT_SECONDS="5") as (base, proc):
        status, quiet = _request(base + ALL, body)
        assert status == 200 and quiet["summary"]["successful"] == 24
        expected = {r["symbol"]: r for r in _strip(quiet["results"])}
        kills = 0
        for _ in range(15):
            answer: dict = {}
            client = threading.Thread(target=lambda: answer.setdefault("r", _request(base + ALL, body, timeout=60)))
            client.start()
            time.sleep(rng.uniform(0.0, 0.08))
            workers = _pool_workers(proc)
            seen |= {w.pid for w in workers}
            if workers:
                victim = rng.choice(workers)
                try:
                    victim.kill()
                    kills += 1
                except psutil.NoSuchProcess:
                    pass
                _wait_dead(victim)  # a kill that lands after this answer must not be charged to the next
            client.join(60)
            assert not client.is_alive()
            status, out = answer["r"]
            assert status == 200
            lost = [(r["symbol"], r["error"]["code"]) for r in out["results"] if r["error"]]
            assert out["summary"]["failed"] <= 1, lost
            for r in _strip(out["results"]):
                if r["error"] is None:
                    assert r == expected[r["symbol"]]
                else:
                    assert r["error"]["code"] == "worker_lost"
        assert kills >= 10
        status, after = _request(base + ALL, body)  # whatever was killed last, the next request is whole
        assert status == 200 and _strip(after["results"]) == _strip(quiet["results"])
    assert _alive(seen) == []  # no orphaned pool worker once gunicorn has stopped


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_sweep_cut_off_from_the_database_does_not_poison_the_next_batch(db_url, demo_db, pg_admin_url) -> None:
    """The sweep's rows are slowed at the table (a trigger sleeps per row), so it is surely mid-COPY when
    every connection of the database is terminated."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    db = make_url(db_url).database
    sweep = {"strategy_id": 1, "use_parallel": True,
             "parameter_sets": [{"rsi_period": 2 + i % 40, "oversold_threshold": 10 + i % 15} for i in range(500)]}
    all_body = {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False}
    try:
        with running_gunicorn(db_url, WEB_CONCURRENCY="1", TASK_TIMEOUT_SECONDS="10") as (base, _proc):
            status, quiet = _request(base + ALL, all_body)
            assert status == 200
            with demo_db.begin() as conn:
                conn.execute(text("CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS "
                                  "$$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$"))
                conn.execute(text("CREATE TRIGGER slow_rows BEFORE INSERT ON crypto_backtest_results "
                                  "FOR EACH ROW EXECUTE FUNCTION slow_row()"))
                before = repo.count_results(conn)
            answer: dict = {}
            sweep_url = base + "/api/crypto/backtest/sweep"
            client = threading.Thread(target=lambda: answer.setdefault("r", _request(sweep_url, sweep, timeout=120)))
            client.start()
            deadline = time.monotonic() + 60
            with admin.connect() as conn:
                while time.monotonic() < deadline and not conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND state = 'active' "
                        "AND query ILIKE 'COPY crypto_backtest_results%'"), {"db": db}).scalar_one():
                    time.sleep(0.05)
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": db})
            client.join(120)
            assert not client.is_alive()
            status, problem = answer["r"]
            assert status == 503 and problem["status"] == 503
            with demo_db.connect() as conn:
                assert repo.count_results(conn) == before  # not one row of the sweep
            status, out = _request(base + ALL, all_body, timeout=60)
            assert status == 200 and out["summary"]["failed"] == 0
            assert _strip(out["results"]) == _strip(quiet["results"])
    finally:
        with demo_db.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS slow_rows ON crypto_backtest_results"))
            conn.execute(text("DROP FUNCTION IF EXISTS slow_row()"))
        admin.dispose()


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_pool_workers_of_a_killed_server_process_exit(db_url, demo_db) -> None:
    """gunicorn kills a worker that overran its timeout (SIGKILL): its pool must not live on as orphans
    holding database connections, not even a pool worker that is stopped (SIGSTOP) and so cannot notice.
    The next worker gunicorn starts serves whole batches."""
    body = {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False}
    with running_gunicorn(db_url, WEB_CONCURRENCY="1") as (base, proc):
        assert _request(base + ALL, body)[0] == 200
        (server_worker,) = psutil.Process(proc.pid).children()
        pool = [p.pid for p in server_worker.children()]
        assert len(pool) >= 2
        psutil.Process(pool[0]).suspend()  # SIGSTOP
        server_worker.kill()
        deadline = time.monotonic() + 15
        while _alive(pool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(pool) == []
        deadline = time.monotonic() + 30
        status = 0
        while status != 200 and time.monotonic() < deadline:  # gunicorn starts a new worker
            try:
                status, out = _request(base + ALL, body, timeout=30)
            except OSError:
                time.sleep(0.2)
        assert status == 200 and out["summary"]["successful"] == 24
