"""Every strategy through every route: parallel == sequential bit for bit, trades, stored metrics, bad input.

The data: the 24 daily demo cryptos plus one crypto of 15-minute candles (the
opening range breakout needs candles shorter than its range; on daily data
each crypto gets insufficient_data and the batch goes on).
"""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from api.db import repository as repo
from api.db.connection import db_config_for
from api.engine import CATALOG
from api.services import CryptoBacktestService
from api.services.demo_loader import seed_demo
from tests.conftest import reset_data

CODES = [s.code for s in CATALOG]
STOPS = {"stop_loss_pct": 4.0, "take_profit_pct": 8.0, "trailing_stop_pct": 3.0}
QUARTER_HOUR = 900


@pytest.fixture(scope="module")
def mixed_db(db_engine):
    """24 daily demo cryptos and QTR15, three weeks of 15-minute candles (one UTC session per day)."""
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=24, n_candles=400, seed=7, only_if_empty=False)
    n = 21 * 96
    t = np.arange(n)
    close = 100.0 * np.exp(0.02 * np.sin(t / 9.0) + 0.0004 * t + 0.01 * np.sin(t / 2.3))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    times = (np.datetime64("2024-03-01T00:00:00") + t * np.timedelta64(QUARTER_HOUR, "s")).astype("datetime64[s]")
    with db_engine.begin() as conn:
        cid = repo.insert_cryptocurrency(conn, "QTR15", "Quarter-hour test coin", interval="15m")
        repo.copy_prices(conn, cid, times, open_, high, low, close, np.ones(n), upsert=False)
    yield db_engine
    reset_data(db_engine)


@pytest.fixture(scope="module")
def service(mixed_db, db_url, settings) -> CryptoBacktestService:
    return CryptoBacktestService(mixed_db, db_config_for(db_url, settings), max_processes=8)


def _without_timing(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


@pytest.mark.parametrize("stops", [False, True], ids=["no-stops", "stops"])
@pytest.mark.parametrize("execution", ["close", "next_open"])
@pytest.mark.parametrize("strategy", CATALOG, ids=CODES)
def test_parallel_equals_sequential_for_every_strategy(service, strategy, execution, stops) -> None:
    params = {"execution": execution, "slippage_pct": 0.05, **(STOPS if stops else {})}
    par = service.run_strategy_against_all_cryptos(strategy.id, params, use_parallel=True, store=False)
    seq = service.run_strategy_against_all_cryptos(strategy.id, params, use_parallel=False, store=False)
    assert par["summary"]["parallel"] is True and seq["summary"]["parallel"] is False
    assert _without_timing(par["results"]) == _without_timing(seq["results"])
    assert par["summary"]["parameters"] == seq["summary"]["parameters"]
    assert par["summary"]["parameters"]["execution"] == execution
    errors = {r["symbol"]: r["error"] for r in par["results"] if r["error"] is not None}
    if strategy.code == "opening_range_breakout":  # daily cryptos cannot form a 60-minute range
        assert set(errors) == {f"SYN{i:03d}" for i in range(1, 25)}
        assert {e["code"] for e in errors.values()} == {"insufficient_data"}
        assert par["summary"]["successful"] == 1
    else:
        assert errors == {} and par["summary"]["successful"] == 25
    ok = [r for r in par["results"] if r["error"] is None]
    assert any(r["num_trades"] or r["open_position"] for r in ok), "nothing traded: the test data says nothing"


def test_opening_range_breakout_trades_on_intraday_candles(service) -> None:
    out = service.run_single_backtest(6, {}, symbol="QTR15", store=False)["result"]
    assert out["error"] is None and out["num_trades"] >= 5
    days = {t["entry_time"][:10] for t in out["trades"]}
    assert len(days) == len(out["trades"])  # one entry per session
    assert all(t["entry_time"][11:16] >= "01:00" for t in out["trades"])  # never inside the range
    assert {t["exit_reason"] for t in out["trades"]} <= {"signal", "end"}


@pytest.mark.parametrize("strategy", CATALOG, ids=CODES)
def test_single_backtest_has_trades_and_equity_curve(client, mixed_db, strategy) -> None:
    body = {"strategy_id": strategy.id, "symbol": "QTR15",
            "parameters": {"execution": "next_open", **STOPS}}
    resp = client.post("/api/crypto/backtest", json=body)
    assert resp.status_code == 200, resp.get_json()
    result = resp.get_json()["result"]
    assert result["error"] is None
    assert len(result["equity_curve"]) == result["candles"] == 21 * 96
    trades = result["trades"]
    assert trades, strategy.code
    for t in trades:
        assert t["exit_reason"] in ("signal", "stop_loss", "trailing_stop", "take_profit", "end")
        assert t["fees"] == pytest.approx(t["entry_fee"] + t["exit_fee"])
        assert t["bars_held"] == (t["exit_bar"] if t["exit_bar"] is not None else result["candles"] - 1) - t["entry_bar"]
        assert (t["exit_reason"] == "end") == t["is_open"]
    assert result["total_fees"] == pytest.approx(sum(t["fees"] for t in trades))
    assert result["num_trades"] == sum(not t["is_open"] for t in trades)


@pytest.mark.parametrize("strategy", CATALOG, ids=CODES)
def test_sweep_stores_every_metric_for_every_strategy(client, mixed_db, strategy) -> None:
    sets = [{}, {"execution": "next_open", "stop_loss_pct": 5}]
    resp = client.post("/api/crypto/backtest/sweep", json={"strategy_id": strategy.id, "parameter_sets": sets})
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["summary"]["backtests"] == 50
    with mixed_db.connect() as conn:
        rows = conn.execute(text(f"SELECT crypto_id, parameters, {', '.join(repo.METRIC_COLUMNS)} "
                                 "FROM crypto_backtest_results WHERE batch_id = :b"),
                            {"b": answer["summary"]["batch_id"]}).mappings().all()
    assert len(rows) == 50
    stored = {(r["crypto_id"], r["parameters"]["execution"], r["parameters"]["stop_loss_pct"]): r for r in rows}
    for setting in answer["settings"]:
        p = setting["parameters"]
        for result in setting["results"]:
            row = stored[(result["crypto_id"], p["execution"], p["stop_loss_pct"])]
            for column in repo.METRIC_COLUMNS:
                assert row[column] == result[column], column


@pytest.mark.parametrize("strategy_id, parameters, field", [
    (2, {"fast_period": 50, "slow_period": 20}, "parameters.fast_period"),
    (3, {"fast_period": 30}, "parameters.fast_period"),
    (4, {"exit_band": "lower"}, "parameters.exit_band"),
    (6, {"range_minutes": 180, "session_hours": 3}, "parameters.range_minutes"),
    (1, {"execution": "tomorrow"}, "parameters.execution"),
    (5, {"stop_loss_pct": 0}, "parameters.stop_loss_pct"),
    (7, {"trailing_stop_pct": 100}, "parameters.trailing_stop_pct"),
    (7, {"rsi_period": 14}, "parameters.rsi_period"),
])
def test_bad_parameters_answer_400_naming_the_field(client, mixed_db, strategy_id, parameters, field) -> None:
    with mixed_db.connect() as conn:
        before = repo.count_results(conn)
    for path in ("/api/crypto/backtest/all", "/api/crypto/backtest"):
        body = {"strategy_id": strategy_id, "parameters": parameters, "symbol": "QTR15"}
        if path.endswith("/all"):
            body.pop("symbol")
        resp = client.post(path, json=body)
        assert resp.status_code == 400, resp.get_json()
        assert resp.content_type == "application/problem+json"
        assert [e["field"] for e in resp.get_json()["errors"]] == [field]
    with mixed_db.connect() as conn:
        assert repo.count_results(conn) == before
