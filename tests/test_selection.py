"""Choosing what to test (`symbols`, `start`, `end`) and removing cryptos, against a real PostgreSQL.

A span must behave exactly like a database that holds only those candles:
each test compares a run over a span of FULL with a run over SPAN, a crypto
holding just the candles of that span.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import text

from api import create_app
from api.db import repository as repo
from api.services.demo_loader import seed_demo
from tests.conftest import reset_data

HOUR = 3600
T0 = np.datetime64("2024-01-01T00:00:00")
N = 24 * 120  # 120 days of hourly candles
LO, HI = 24 * 30 + 5, 24 * 90 + 17  # the span's first and last candle index


def _candles(seed: int):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, N))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, N))
    times = (T0 + np.arange(N) * np.timedelta64(HOUR, "s")).astype("datetime64[s]")
    return times, open_, high, low, close, rng.uniform(1, 5, N)


def _iso(i: int) -> str:
    return str((T0 + np.timedelta64(i * HOUR, "s")).astype("datetime64[s]")) + "Z"


@pytest.fixture(scope="module")
def spans_db(db_engine):
    """FULL and OTHER (120 days hourly), SPAN = FULL's candles LO..HI alone, and 6 synthetic demo cryptos."""
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=6, n_candles=300, seed=3, only_if_empty=False)
    times, o, h, lo, c, v = _candles(1)
    with db_engine.begin() as conn:
        full = repo.insert_cryptocurrency(conn, "FULL", "Full", interval="1h")
        repo.copy_prices(conn, full, times, o, h, lo, c, v, upsert=False)
        span = repo.insert_cryptocurrency(conn, "SPAN", "Span", interval="1h")
        cut = slice(LO, HI + 1)
        repo.copy_prices(conn, span, times[cut], o[cut], h[cut], lo[cut], c[cut], v[cut], upsert=False)
        other = repo.insert_cryptocurrency(conn, "OTHER", "Other", interval="1h")
        repo.copy_prices(conn, other, *_candles(2), upsert=False)
    yield db_engine
    reset_data(db_engine)


@pytest.fixture(scope="module")
def client_m(settings, spans_db):
    return create_app(settings, max_concurrent_batches=4).test_client()


def _metrics(row: dict) -> dict:
    skip = ("crypto_id", "symbol", "name", "calculation_time_ms", "data_version")
    return {k: v for k, v in row.items() if k not in skip}


@pytest.mark.parametrize("strategy_id, parameters", [
    (1, {}), (2, {"fast_period": 10, "slow_period": 30, "stop_loss_pct": 3}),
    (5, {"execution": "next_open", "trailing_stop_pct": 2}), (6, {"range_minutes": 180}), (7, {})])
@pytest.mark.parametrize("parallel", [True, False])
def test_a_span_equals_a_database_holding_only_its_candles(client_m, strategy_id, parameters, parallel) -> None:
    spanned = client_m.post("/api/crypto/backtest/all", json={
        "strategy_id": strategy_id, "parameters": parameters, "use_parallel": parallel,
        "symbols": ["full", "OTHER"], "start": _iso(LO), "end": _iso(HI)}).get_json()
    alone = client_m.post("/api/crypto/backtest/all", json={
        "strategy_id": strategy_id, "parameters": parameters, "symbols": ["SPAN"]}).get_json()
    rows = {r["symbol"]: r for r in spanned["results"]}
    assert set(rows) == {"FULL", "OTHER"}
    assert rows["FULL"]["error"] is None and rows["FULL"]["candles"] == HI - LO + 1
    assert _metrics(rows["FULL"]) == _metrics(alone["results"][0])
    assert spanned["summary"]["selection"] == {"symbols": ["FULL", "OTHER"], "start": _iso(LO), "end": _iso(HI)}


def test_single_backtest_over_a_span_equals_the_span_alone(client_m) -> None:
    body = {"strategy_id": 3, "parameters": {"stop_loss_pct": 2, "take_profit_pct": 4}}
    spanned = client_m.post("/api/crypto/backtest", json={**body, "symbol": "FULL", "start": _iso(LO),
                                                          "end": _iso(HI)}).get_json()["result"]
    alone = client_m.post("/api/crypto/backtest", json={**body, "symbol": "SPAN"}).get_json()["result"]
    assert spanned["trades"] and spanned["trades"] == alone["trades"]
    assert spanned["equity_curve"] == alone["equity_curve"]
    assert spanned["equity_curve"][0]["time"] == _iso(LO) and spanned["equity_curve"][-1]["time"] == _iso(HI)


def test_a_date_as_end_takes_that_whole_day(client_m) -> None:
    out = client_m.post("/api/crypto/backtest/all", json={"strategy_id": 7, "parameters": {}, "symbols": ["FULL"],
                                                          "start": "2024-01-02", "end": "2024-01-03"}).get_json()
    row = out["results"][0]
    assert row["candles"] == 48 and row["first_time"] == "2024-01-02T00:00:00Z"
    assert row["last_time"] == "2024-01-03T23:00:00Z"


def test_sweep_takes_the_selection(client_m) -> None:
    out = client_m.post("/api/crypto/backtest/sweep", json={
        "strategy_id": 1, "parameter_sets": [{}, {"rsi_period": 7}], "symbols": ["FULL"],
        "start": _iso(LO), "end": _iso(HI), "store": True}).get_json()
    alone = client_m.post("/api/crypto/backtest/sweep", json={
        "strategy_id": 1, "parameter_sets": [{}, {"rsi_period": 7}], "symbols": ["SPAN"]}).get_json()
    assert out["summary"]["backtests"] == 2
    for a, b in zip(out["settings"], alone["settings"]):
        assert _metrics(a["results"][0]) == _metrics(b["results"][0])
    with client_m.application.extensions["db_engine"].connect() as conn:
        spans = conn.execute(text("SELECT DISTINCT extract(epoch FROM span_start)::bigint, "
                                  "extract(epoch FROM span_end)::bigint FROM crypto_backtest_results "
                                  "WHERE batch_id = :b"), {"b": out["summary"]["batch_id"]}).all()
    t0 = int(T0.astype("datetime64[s]").astype(np.int64))
    assert spans == [(t0 + LO * HOUR, t0 + HI * HOUR)]


def test_no_candles_in_the_span_is_that_cryptos_error(client_m) -> None:
    out = client_m.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {},
                                                          "start": "2024-02-01", "end": "2024-02-02"}).get_json()
    errors = {r["symbol"]: r["error"]["code"] for r in out["results"] if r["error"]}
    assert {"FULL", "OTHER", "SPAN"}.isdisjoint(errors)  # these have candles then: RSI runs on 48 of them
    assert set(errors) == {f"SYN{i:03d}" for i in range(1, 7)} and set(errors.values()) == {"no_data"}


@pytest.mark.parametrize("body, status, field", [
    ({"symbols": ["FULL", "NOPE", "ZZZ"]}, 404, "symbols"),
    ({"symbols": []}, 400, "symbols"),
    ({"symbols": "FULL"}, 400, "symbols"),
    ({"start": "2024-13-01"}, 400, "start"),
    ({"end": "yesterday"}, 400, "end"),
    ({"start": "2024-03-01", "end": "2024-02-01"}, 400, "start"),
])
def test_bad_selections_name_the_field(client_m, body, status, field) -> None:
    resp = client_m.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}, **body})
    assert resp.status_code == status, resp.get_json()
    errors = resp.get_json()["errors"]
    assert errors[0]["field"] == field
    if status == 404:
        assert "NOPE, ZZZ" in errors[0]["message"]


def test_cli_takes_symbols_and_a_span(settings, spans_db) -> None:
    import orjson

    runner = create_app(settings).test_cli_runner()
    out = runner.invoke(args=["backtest-all", "--strategy", "7", "--symbols", "FULL,other", "--start",
                              "2024-01-02", "--end", "2024-01-03", "--json", "--sequential"])
    assert out.exit_code == 0, out.output
    rows = orjson.loads(out.output)["results"]
    assert sorted(r["symbol"] for r in rows) == ["FULL", "OTHER"] and {r["candles"] for r in rows} == {48}
    bad = runner.invoke(args=["backtest-all", "--symbols", "FULL,NOPE"])
    assert bad.exit_code != 0 and "NOPE" in bad.output


def test_delete_a_crypto_and_the_demo_ones(settings, db_engine) -> None:
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=4, n_candles=100, seed=5, only_if_empty=False)
    times, o, h, lo, c, v = _candles(4)
    with db_engine.begin() as conn:
        real = repo.insert_cryptocurrency(conn, "REAL", "Real", interval="1h")
        repo.copy_prices(conn, real, times, o, h, lo, c, v, upsert=False)
    client = create_app(settings).test_client()
    assert client.post("/api/crypto/backtest/all", json={"strategy_id": 7, "parameters": {}}).status_code == 200
    gone = client.delete("/api/crypto/cryptocurrencies/syn002")
    assert gone.status_code == 200
    assert gone.get_json() == {"deleted": [{"symbol": "SYN002", "candles": 100, "results": 1}], "count": 1}
    assert client.delete("/api/crypto/cryptocurrencies/SYN002").status_code == 404
    refused = client.delete("/api/crypto/cryptocurrencies")
    assert refused.status_code == 400 and refused.get_json()["errors"][0]["field"] == "synthetic"
    demo = client.delete("/api/crypto/cryptocurrencies?synthetic=true").get_json()
    assert sorted(d["symbol"] for d in demo["deleted"]) == ["SYN001", "SYN003", "SYN004"]
    left = client.get("/api/crypto/cryptocurrencies").get_json()["cryptocurrencies"]
    assert [c["symbol"] for c in left] == ["REAL"]
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM crypto_prices p JOIN cryptocurrencies c ON c.id = p.crypto_id "
                                 "WHERE c.is_synthetic")).scalar_one() == 0
        assert conn.execute(text("SELECT count(DISTINCT crypto_id) FROM crypto_backtest_results")).scalar_one() == 1
    cli = create_app(settings).test_cli_runner().invoke(args=["delete-cryptos", "REAL"])
    assert cli.exit_code == 0 and "deleted REAL: 2880 candles, 1 results" in cli.output
    reset_data(db_engine)


def test_a_crypto_whose_results_are_being_stored_is_not_deleted(settings, db_engine) -> None:
    """A batch share-locks its cryptos while it stores; a DELETE waits, then answers 409 and deletes nothing."""
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=2, n_candles=100, seed=5, only_if_empty=False)
    client = create_app(settings.__class__(**{**settings.__dict__, "lock_timeout_ms": 300})).test_client()
    holding, release = threading.Event(), threading.Event()

    def store_slowly() -> None:
        with db_engine.begin() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM cryptocurrencies")).all()]
            repo.lock_cryptos_for_results(conn, ids)
            holding.set()
            release.wait(30)

    storer = threading.Thread(target=store_slowly)
    storer.start()
    try:
        assert holding.wait(30)
        resp = client.delete("/api/crypto/cryptocurrencies/SYN001")
        assert resp.status_code == 409 and resp.headers["Retry-After"]
    finally:
        release.set()
        storer.join(30)
    assert client.delete("/api/crypto/cryptocurrencies/SYN001").status_code == 200
    reset_data(db_engine)


@pytest.mark.parametrize("symbol", ["NUL\x00BYTE", "with space", "x" * 40])
def test_a_symbol_that_cannot_be_one_is_400_not_a_database_error(settings, db_engine, symbol) -> None:
    client = create_app(settings).test_client()
    listed = client.get("/api/crypto/backtest/batches", query_string={"symbol": symbol})
    assert listed.status_code == 400 and listed.get_json()["errors"][0]["field"] == "symbol"
    from urllib.parse import quote

    gone = client.delete(f"/api/crypto/cryptocurrencies/{quote(symbol)}")
    assert gone.status_code == 400 and gone.get_json()["errors"][0]["field"] == "symbol"
