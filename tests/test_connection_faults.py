"""A lost database connection is not a failed crypto.

Between batches, connections that died (backends terminated, a server
restart) are replaced silently: the next batch is whole. During a batch, a
database that fails answers 503 for the batch, stores nothing and leaves the
Idempotency-Key free. Two batches in one process (threads) share nothing.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import api.services.backtest_service as svc_module
from api.services import crypto_reads
from api.db import repository as repo
from api.db.connection import db_config_for
from api.services import CryptoBacktestService
from api.services.fanout import shutdown_pools

BATCH = "/api/crypto/backtest/all"
WORKER_APP = "crypto-backtest-worker"


def _strip(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


@pytest.fixture
def admin(pg_admin_url):
    engine = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _terminate(admin, db_url: str, application_name: str | None = None) -> int:
    """Terminate the test database's backends (all, or one application's) and wait till they are gone."""
    sql = ("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
           "WHERE datname = :db AND pid <> pg_backend_pid()")
    params = {"db": make_url(db_url).database}
    if application_name:
        sql += " AND application_name = :app"
        params["app"] = application_name
    with admin.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("use_parallel", [True, False], ids=["parallel", "sequential"])
def test_connections_killed_between_batches_are_replaced_silently(client, demo_db, admin, db_url,
                                                                  use_parallel) -> None:
    body = {"strategy_id": 1, "parameters": {}, "use_parallel": use_parallel}
    first = client.post(BATCH, json=body).get_json()
    assert first["summary"]["successful"] == 24
    for _ in range(3):
        assert _terminate(admin, db_url) >= 1  # the app's and the workers' connections
        again = client.post(BATCH, json=body)
        assert again.status_code == 200
        out = again.get_json()
        assert [r["error"] for r in out["results"]] == [None] * 24
        assert _strip(out["results"]) == _strip(first["results"])


GRID = {"strategy_id": 1, "grid": {"rsi_period": [7, 14]}}


MONTE_CARLO = {"strategy_id": 1, "parameters": {}, "method": "trades", "paths": 20}
WALK_FORWARD = {"strategy_id": 1, "grid": {"rsi_period": [9, 14]}, "train_days": 120, "test_days": 60}
BACKTESTS = {BATCH: 24, "/api/crypto/backtest/sweep": 48, "/api/crypto/backtest/montecarlo": 24,
             "/api/crypto/backtest/walkforward": 24}  # successful


@pytest.mark.timeout(90)
@pytest.mark.parametrize("route, request_body", [(BATCH, {"strategy_id": 1, "parameters": {}}),
                                                 ("/api/crypto/backtest/sweep", GRID),
                                                 ("/api/crypto/backtest/montecarlo", MONTE_CARLO),
                                                 ("/api/crypto/backtest/walkforward", WALK_FORWARD)],
                         ids=["all", "grid", "montecarlo", "walkforward"])
@pytest.mark.parametrize("use_parallel", [True, False], ids=["parallel", "sequential"])
def test_database_lost_during_a_batch_is_503_and_stores_nothing(client, demo_db, admin, db_url, tmp_path,
                                                                monkeypatch, use_parallel, route,
                                                                request_body) -> None:
    """The batch's readers wait at a gate; meanwhile their connections are cut and the database refuses
    new ones. Opened, the gate lets them find out: the batch answers 503, nothing is stored, and the
    Idempotency-Key stays free for the retry (which, the database back, is answered in full)."""
    gate, waiting = tmp_path / "open", tmp_path / "waiting"
    real_take = crypto_reads.take_candles

    def gated_take(conn, crypto_id, fields):
        waiting.touch()
        while not gate.exists():
            time.sleep(0.01)
        return real_take(conn, crypto_id, fields)

    shutdown_pools()
    monkeypatch.setattr(crypto_reads, "take_candles", gated_take)  # inherited by the fork pool's workers
    body = {**request_body, "use_parallel": use_parallel}
    headers = {"Idempotency-Key": f"cut-{use_parallel}"}
    answer: dict = {}
    worker = threading.Thread(target=lambda: answer.setdefault("r", client.post(route, json=body, headers=headers)))
    db = make_url(db_url).database
    try:
        worker.start()
        deadline = time.monotonic() + 30
        while not waiting.exists() and time.monotonic() < deadline:  # a reader holds its connection at the gate
            time.sleep(0.02)
        assert waiting.exists()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false'))
        _terminate(admin, db_url, WORKER_APP)
        assert _count_backends(admin, db, WORKER_APP) == 0
        gate.touch()
        worker.join(60)
        assert not worker.is_alive()
    finally:
        gate.touch()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true'))
        worker.join(60)
    resp = answer["r"]
    assert resp.status_code == 503 and resp.headers.get("Retry-After")
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["errors"][0]["field"] == "database"
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0
        assert conn.execute(text("SELECT count(*) FROM grid_results")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM backtest_batches")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM idempotency_keys")).scalar_one() == 0
    monkeypatch.undo()
    shutdown_pools()
    retry = client.post(route, json=body, headers=headers)
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers
    assert retry.get_json()["summary"]["successful"] == BACKTESTS[route]


def _count_backends(admin, db: str, application_name: str) -> int:
    with admin.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND application_name = :app"),
            {"db": db, "app": application_name}).scalar_one())


@pytest.mark.timeout(60)
def test_an_answer_with_a_lost_crypto_is_not_replayed(client, demo_db, monkeypatch) -> None:
    """A worker killed mid-batch costs one crypto (retryable); such an answer is not kept for the key."""
    import os
    import signal

    real = svc_module._backtest_crypto
    parent = os.getpid()

    def killed_on_syn005(crypto, *args, **kwargs):
        if crypto["symbol"] == "SYN005" and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(crypto, *args, **kwargs)

    shutdown_pools()
    monkeypatch.setattr(svc_module, "_backtest_crypto", killed_on_syn005)
    body = {"strategy_id": 1, "parameters": {}, "use_parallel": True, "use_cache": False}
    headers = {"Idempotency-Key": "partial-answer"}
    for _ in range(2):  # each try runs again: the partial answer was not recorded
        resp = client.post(BATCH, json=body, headers=headers)
        assert resp.status_code == 200 and "Idempotent-Replayed" not in resp.headers
        assert resp.get_json()["summary"]["retryable"] == 1
    monkeypatch.undo()
    shutdown_pools()
    whole = client.post(BATCH, json=body, headers=headers)
    assert whole.status_code == 200 and whole.get_json()["summary"]["retryable"] == 0
    replay = client.post(BATCH, json=body, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.data == whole.data
    shutdown_pools()


@pytest.mark.timeout(120)
def test_concurrent_batches_in_threads_share_nothing(demo_db, db_url, settings) -> None:
    """MAX_CONCURRENT_BATCHES > 1: batches in several threads of one process, sequential and parallel,
    each on its own connection and read-ahead, every answer equal to a batch run alone."""
    service = CryptoBacktestService(demo_db, db_config_for(db_url, settings), start_method="fork",
                                    max_concurrent_batches=3)
    expected = _strip(service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)["results"])
    modes = [False, False, True]
    rounds, failures = 5, []
    barrier = threading.Barrier(len(modes))

    def run(mode: bool) -> None:
        try:
            for _ in range(rounds):
                barrier.wait(30)
                out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=mode, store=True, use_cache=False)
                if _strip(out["results"]) != expected:
                    failures.append((mode, [r["error"] for r in out["results"] if r["error"]]))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append((mode, repr(exc)))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(m,)) for m in modes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    shutdown_pools()
    assert failures == []
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == rounds * len(modes) * 24
