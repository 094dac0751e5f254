"""The database misbehaving: down, locked, failing mid-write. A clear 503, never a hang, a 500 or half a batch."""
from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import create_engine, text

from api import create_app
from api.config import Settings
from api.db import repository as repo

BATCH = "/api/crypto/backtest/all"


@pytest.mark.timeout(60)  # a hang (no connect timeout) fails here
def test_database_down_answers_503_with_retry_after() -> None:
    app = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere"))
    client = app.test_client()
    ready = client.get("/api/ready")
    assert ready.status_code == 503 and ready.get_json()["database"] == "unreachable"
    assert ready.headers.get("Retry-After")
    resp = client.post(BATCH, json={"strategy_id": 1, "parameters": {}})
    assert resp.status_code == 503 and resp.headers.get("Retry-After")
    assert resp.mimetype == "application/problem+json" and "database" in resp.get_json()["detail"]
    assert [e["field"] for e in resp.get_json()["errors"]] == ["database"]
    assert client.get("/api/health").status_code == 200  # the process itself is fine


@pytest.mark.timeout(60)  # waiting on the lock for ever fails here
def test_locked_table_answers_503_by_lock_timeout(db_url, demo_db, settings, caplog) -> None:
    app = create_app(Settings(database_url=db_url, lock_timeout_ms=1000))
    client = app.test_client()
    locker = create_engine(db_url)
    conn = locker.connect()
    trans = conn.begin()
    conn.execute(text("LOCK TABLE crypto_candle_series IN ACCESS EXCLUSIVE MODE"))
    try:
        with caplog.at_level(logging.WARNING, logger="api.http.problems"):
            resp = client.post(BATCH, json={"strategy_id": 1, "parameters": {}, "use_parallel": False, "use_cache": False})
        assert resp.status_code == 503 and resp.headers.get("Retry-After")
        assert "lock timeout" in caplog.text  # PostgreSQL gave up on the lock: lock_timeout, not a hang
        with demo_db.connect() as check:
            assert repo.count_results(check) == 0
    finally:
        trans.rollback()
        conn.close()
        locker.dispose()
    ok = client.post(BATCH, json={"strategy_id": 1, "parameters": {}, "use_parallel": False, "use_cache": False})
    assert ok.status_code == 200 and ok.get_json()["summary"]["successful"] == 24  # connections usable again


@pytest.mark.timeout(60)
def test_fault_on_third_result_row_stores_nothing(client, demo_db) -> None:
    with demo_db.begin() as conn:
        conn.execute(text("""
            CREATE FUNCTION fail_third_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT count(*) FROM pg_temp_seen) >= 2 THEN
                    RAISE EXCEPTION 'injected fault on the third result row';
                END IF;
                INSERT INTO pg_temp_seen VALUES (1);
                RETURN NEW;
            END $$"""))
        conn.execute(text("CREATE UNLOGGED TABLE pg_temp_seen (x int)"))
        conn.execute(text("CREATE TRIGGER fail_third BEFORE INSERT ON crypto_backtest_results "
                          "FOR EACH ROW EXECUTE FUNCTION fail_third_row()"))
    try:
        resp = client.post(BATCH, json={"strategy_id": 1, "parameters": {}})
        assert resp.status_code in (500, 503) and resp.mimetype == "application/problem+json"
        assert "Traceback" not in resp.get_data(as_text=True)
        with demo_db.connect() as conn:
            assert repo.count_results(conn) == 0
    finally:
        with demo_db.begin() as conn:
            conn.execute(text("DROP TRIGGER fail_third ON crypto_backtest_results"))
            conn.execute(text("DROP FUNCTION fail_third_row()"))
            conn.execute(text("DROP TABLE pg_temp_seen"))
    assert client.post(BATCH, json={"strategy_id": 1, "parameters": {}}).status_code == 200


@pytest.mark.parametrize("closes", [[5.0] * 40, [5.0], [1.0 + i for i in range(40)]], ids=["flat", "one", "rising"])
def test_responses_are_strict_json(client, empty_db, closes) -> None:
    """Flat, one-candle and zero-trade series: metrics without a value are null, never NaN or Infinity."""
    import json

    import numpy as np

    t = (np.datetime64("2024-01-01") + np.arange(len(closes))).astype("datetime64[s]")
    px = np.array(closes)
    with empty_db.begin() as conn:
        cid = repo.insert_cryptocurrency(conn, "EDGE", "Edge case")
        repo.copy_prices(conn, cid, t, px, px, px, px, np.ones(len(px)))
    for url, body in ((BATCH, {"strategy_id": 1, "parameters": {}}),
                      ("/api/crypto/backtest", {"strategy_id": 1, "parameters": {}, "symbol": "EDGE"})):
        raw = client.post(url, json=body).get_data(as_text=True)

        def reject(constant: str) -> None:
            raise AssertionError(f"non-JSON constant {constant} in {url}")

        parsed = json.loads(raw, parse_constant=reject)
        assert parsed
    one = client.post("/api/crypto/backtest", json={"strategy_id": 1, "parameters": {}, "symbol": "EDGE"}).get_json()
    result = one["result"]
    if len(closes) < 15:
        assert result["error"]["code"] == "insufficient_data"
    else:
        assert result["num_trades"] == 0 and result["profit_factor"] is None


def test_a_batch_over_the_bound_gets_429_with_retry_after(app, client, demo_db, monkeypatch) -> None:
    from api.services.admission import Admission

    service = app.extensions["backtest_service"]
    monkeypatch.setattr(service, "_admission", Admission(running=1, waiting=0))  # no queue: refused at once
    with service.admitted():  # a batch is running in this process
        busy = client.post(BATCH, json={"strategy_id": 1, "parameters": {}})
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
        assert client.post("/api/crypto/backtest/sweep",
                           json={"strategy_id": 1, "parameter_sets": [{}]}).status_code == 429
        with demo_db.connect() as conn:
            assert repo.count_results(conn) == 0
    assert client.post(BATCH, json={"strategy_id": 1, "parameters": {}}).status_code == 200


def test_concurrent_batches_in_threads_are_served_or_told_to_retry(client, demo_db) -> None:
    """Several batches at once in one process: each answer is complete (200) or a 429 with Retry-After."""
    answers: list = []

    def run() -> None:
        answers.append(client.post(BATCH, json={"strategy_id": 1, "parameters": {}}))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(answers) == 4
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.status_code == 429 and a.headers.get("Retry-After") for a in answers if a not in ok)
    strip = lambda a: [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in a.get_json()["results"]]  # noqa
    assert all(strip(a) == strip(ok[0]) for a in ok)
