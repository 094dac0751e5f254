"""End to end: gunicorn on a loopback port, real HTTP, the batch answered and stored."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import psutil
import pytest

from api.db import repository as repo
from tests.served import request_json, running_gunicorn


@pytest.fixture
def gunicorn_url(db_url, demo_db):
    with running_gunicorn(db_url) as served:
        yield served


@pytest.mark.e2e
def test_batch_through_gunicorn(gunicorn_url, demo_db) -> None:
    gunicorn_url, proc = gunicorn_url
    status, ready = request_json(gunicorn_url + "/api/ready")
    assert status == 200 and ready["status"] == "ready"
    status, par = request_json(gunicorn_url + "/api/crypto/backtest/all",
                           {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False})
    assert status == 200 and par["summary"]["successful"] == 24 and par["summary"]["parallel"] is True
    status, seq = request_json(gunicorn_url + "/api/crypto/backtest/all",
                           {"strategy_id": 1, "parameters": {}, "use_parallel": False, "use_cache": False})
    strip = lambda rs: [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in rs]  # noqa: E731
    assert strip(par["results"]) == strip(seq["results"])
    status, bad = request_json(gunicorn_url + "/api/crypto/backtest/all", {"strategy_id": 1})
    assert status == 400 and bad["errors"][0]["field"] == "parameters"
    with demo_db.connect() as conn:
        assert repo.count_results(conn, par["summary"]["batch_id"]) == 24
    # each gunicorn worker keeps at most one warm pool of min(cpu, 8) processes
    for worker in psutil.Process(proc.pid).children():
        assert len(worker.children()) <= min(os.cpu_count(), 8)


@pytest.mark.e2e
def test_a_grid_through_gunicorn_is_stored_answered_again_from_the_store_and_read_back(gunicorn_url, demo_db) -> None:
    gunicorn_url, _ = gunicorn_url
    body = {"strategy_id": 1, "grid": {"rsi_period": {"start": 7, "stop": 21, "step": 7},
                                       "oversold_threshold": [25, 30]}, "top": 2}
    status, first = request_json(gunicorn_url + "/api/crypto/backtest/sweep", body)
    assert status == 200 and first["summary"]["computed"] == 6 * 24 and first["summary"]["parallel"] is True
    status, again = request_json(gunicorn_url + "/api/crypto/backtest/sweep", body)
    assert status == 200 and again["summary"]["from_store"] == 6 * 24 and again["summary"]["computed"] == 0
    assert again["settings"] == first["settings"] and again["best_per_crypto"] == first["best_per_crypto"]
    status, back = request_json(gunicorn_url + f"/api/crypto/backtest/batches/{first['summary']['batch_id']}")
    assert status == 200 and back == first
    status, bad = request_json(gunicorn_url + "/api/crypto/backtest/sweep", {**body, "rank_by": "luck"})
    assert status == 400 and bad["errors"][0]["field"] == "rank_by"


@pytest.mark.e2e
def test_repeated_parallel_batches_on_fresh_workers_never_hang(gunicorn_url, demo_db) -> None:
    """Regression: pool workers forked from gunicorn inherited its SIGTERM handler and hung Pool exit."""
    gunicorn_url, proc = gunicorn_url
    seen: set[int] = set()
    for _ in range(6):
        status, body = request_json(gunicorn_url + "/api/crypto/backtest/all",
                                {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False}, timeout=30)
        assert status == 200 and body["summary"]["successful"] == 24
        seen |= {c.pid for w in psutil.Process(proc.pid).children() for c in w.children()}
    # warm pools are reused, not re-created per request: 2 gunicorn workers x min(cpu, 8) processes at most
    assert 0 < len(seen) <= 2 * min(os.cpu_count(), 8)
    tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.terminate()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                              for p in tree):
        time.sleep(0.1)
    assert not [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]


@pytest.mark.e2e
def test_twenty_concurrent_batches_against_gunicorn(db_url, demo_db) -> None:
    """20 clients at once: every answer is 200 or 429/503 with Retry-After, none 500; connections come back."""
    import concurrent.futures

    from sqlalchemy import text

    def connections() -> int:
        with demo_db.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalar_one()

    baseline = connections()
    with running_gunicorn(db_url) as (base, _proc):
        def one(_: int) -> tuple[int, str | None]:
            req = urllib.request.Request(base + "/api/crypto/backtest/all", method="POST",
                                         data=json.dumps({"strategy_id": 1, "parameters": {}}).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    return resp.status, resp.headers.get("Retry-After")
            except urllib.error.HTTPError as err:
                return err.code, err.headers.get("Retry-After")

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(one, range(20)))
        assert all(code == 200 or (code in (429, 503) and retry) for code, retry in answers), answers
        # a process that takes several of the burst runs one and queues two (MAX_QUEUED_BATCHES), so at
        # least those three are served even if everything else is told to retry
        assert sum(code == 200 for code, _ in answers) >= 3
    deadline = time.monotonic() + 10
    while connections() > baseline and time.monotonic() < deadline:
        time.sleep(0.2)
    assert connections() <= baseline
