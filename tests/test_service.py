"""CryptoBacktestService against a real PostgreSQL: parallel == sequential, isolation, storage."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from sqlalchemy import text

from api.db import repository as repo
from api.db.connection import db_config_for
from api.services import CryptoBacktestService
from api.services.errors import NotFound, ValidationFailed


@pytest.fixture
def service(db_engine, db_url, settings) -> CryptoBacktestService:
    return CryptoBacktestService(db_engine, db_config_for(db_url, settings), max_processes=8)


def _without_timing(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


def test_parallel_and_sequential_results_are_identical(demo_db, service, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="api.services.backtest_service"):
        par = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, use_cache=False)
        seq = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, use_cache=False)
    assert len(par["results"]) == 24
    assert _without_timing(par["results"]) == _without_timing(seq["results"])
    assert par["summary"]["parallel"] is True and seq["summary"]["parallel"] is False
    assert par["summary"]["processes"] == min(os.cpu_count(), 24, 8)
    assert seq["summary"]["processes"] == 1
    msgs = [r.getMessage() for r in caplog.records]
    assert "Running strategy against 24 cryptocurrencies (parallel=True)" in msgs
    assert f"Using {min(os.cpu_count(), 24, 8)} parallel processes" in msgs
    assert "Completed backtesting: 24 successful, 0 failed" in msgs
    for key in ("best_return", "worst_return", "average_return", "successful", "failed", "total_cryptos"):
        assert par["summary"][key] == seq["summary"][key]


def test_results_sorted_by_total_return_and_summary_consistent(demo_db, service) -> None:
    out = service.run_strategy_against_all_cryptos(1, {"rsi_period": 10}, use_parallel=True)
    returns = [r["total_return"] for r in out["results"]]
    assert returns == sorted(returns, reverse=True)
    s = out["summary"]
    assert s["best_return"] == returns[0] and s["worst_return"] == returns[-1]
    assert s["average_return"] == pytest.approx(sum(returns) / len(returns))
    assert s["parameters"]["rsi_period"] == 10 and s["parameters"]["initial_investment"] == 10000.0
    for r in out["results"]:
        assert r["final_value"] == pytest.approx(10000.0 * (1 + r["total_return"] / 100))


def test_a_crypto_with_too_little_data_fails_alone(demo_db, service) -> None:
    with demo_db.begin() as conn:
        cid = repo.insert_cryptocurrency(conn, "TINY", "Too short")
        t = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-06")).astype("datetime64[s]")
        px = np.array([1.0, 1.1, 1.2, 1.1, 1.0])
        repo.copy_prices(conn, cid, t, px, px * 1.01, px * 0.99, px, np.ones(5))
    for parallel in (True, False):
        out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=parallel, use_cache=False)
        assert out["summary"]["failed"] == 1 and out["summary"]["successful"] == 24
        last = out["results"][-1]
        assert last["symbol"] == "TINY"
        assert last["error"]["code"] == "insufficient_data"
        assert "15" in last["error"]["message"] and "5" in last["error"]["message"]
        assert last["total_return"] is None
        assert all(r["error"] is None for r in out["results"][:-1])


def test_batch_results_are_stored_in_one_batch(demo_db, service) -> None:
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True)
    batch = out["summary"]["batch_id"]
    with demo_db.connect() as conn:
        assert repo.count_results(conn, batch) == 24
        rows = conn.execute(text("SELECT crypto_id, total_return, parameters FROM crypto_backtest_results "
                                 "WHERE batch_id = :b"), {"b": batch}).mappings().all()
    stored = {r["crypto_id"]: r["total_return"] for r in rows}
    assert stored == {r["crypto_id"]: r["total_return"] for r in out["results"]}
    assert rows[0]["parameters"] == out["summary"]["parameters"]


def test_single_crypto_runs_sequentially(empty_db, service) -> None:
    from api.services.demo_loader import seed_demo

    seed_demo(empty_db, n_cryptos=1, n_candles=200, seed=3, only_if_empty=False)
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True)
    assert out["summary"]["parallel"] is False and out["summary"]["processes"] == 1


def test_unknown_strategy_and_bad_parameters(demo_db, service) -> None:
    with pytest.raises(NotFound):
        service.run_strategy_against_all_cryptos(42, {})
    with pytest.raises(ValidationFailed) as err:
        service.run_strategy_against_all_cryptos(1, {"rsi_period": 1})
    assert err.value.errors[0]["field"] == "parameters.rsi_period"
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0


def test_single_backtest_has_trades_and_equity(demo_db, service) -> None:
    out = service.run_single_backtest(1, {"rsi_period": 7}, symbol="syn002")
    r = out["result"]
    assert r["symbol"] == "SYN002" and len(r["equity_curve"]) == r["candles"] == 400
    closed = [t for t in r["trades"] if not t["is_open"]]
    assert len(closed) == r["num_trades"]
    assert r["equity_curve"][-1]["equity"] == pytest.approx(r["final_value"])
    with pytest.raises(NotFound):
        service.run_single_backtest(1, {}, crypto_id=987654)


def test_auto_mode_follows_the_work_estimate(demo_db, service) -> None:
    small = CryptoBacktestService(service.engine, service.db_config, auto_parallel_min_work=10**9)
    big = CryptoBacktestService(service.engine, service.db_config, auto_parallel_min_work=1)
    seq = small.run_strategy_against_all_cryptos(1, {}, use_parallel="auto", use_cache=False)
    par = big.run_strategy_against_all_cryptos(1, {}, use_parallel="auto", use_cache=False)
    assert seq["summary"]["parallel"] is False and par["summary"]["parallel"] is True
    assert seq["summary"]["requested_parallel"] == "auto"
    assert _without_timing(seq["results"]) == _without_timing(par["results"])


def test_sweep_equals_separate_batches(demo_db, service) -> None:
    sets = [{"rsi_period": 7}, {"rsi_period": 21, "oversold_threshold": 25}, {}]
    sweep = service.run_parameter_sweep(1, sets, use_parallel=True)
    assert sweep["summary"]["settings"] == 3 and sweep["summary"]["backtests"] == 72
    by_params = {tuple(sorted(s["parameters"].items())): s for s in sweep["settings"]}
    for p in sets:
        batch = service.run_strategy_against_all_cryptos(1, p, use_parallel=False, store=False)
        got = by_params[tuple(sorted(batch["summary"]["parameters"].items()))]
        assert _without_timing(got["results"]) == _without_timing(batch["results"])
    averages = [s["summary"]["average_return"] for s in sweep["settings"]]
    assert averages == sorted(averages, reverse=True)
    seq = service.run_parameter_sweep(1, sets, use_parallel=False, store=False)
    assert [_without_timing(s["results"]) for s in seq["settings"]] == \
        [_without_timing(s["results"]) for s in sweep["settings"]]
    with demo_db.connect() as conn:
        assert repo.count_results(conn, sweep["summary"]["batch_id"]) == 72


def test_sweep_names_the_bad_setting(demo_db, service) -> None:
    with pytest.raises(ValidationFailed) as err:
        service.run_parameter_sweep(1, [{}, {"rsi_period": 0}])
    assert err.value.errors[0]["field"] == "parameter_sets.1.rsi_period"
    with pytest.raises(ValidationFailed):
        service.run_parameter_sweep(1, [])


def test_stored_rows_equal_returned_results_exactly(empty_db) -> None:
    """COPY csv encoding round-trips every metric bit for bit, nulls, booleans and awkward error text."""
    import json

    with empty_db.begin() as conn:
        cid = repo.insert_cryptocurrency(conn, "ODD", "Odd")
    results = [
        {"crypto_id": cid, "total_return": 0.1 + 0.2, "final_value": 1e16 / 3, "buy_and_hold_return": -5e-324,
         "num_trades": 7, "win_rate": 42.857142857142854, "max_drawdown": 0.0, "sharpe_ratio": None,
         "sortino_ratio": -1.2345678901234567e-7, "exposure": 100.0, "profit_factor": None, "open_position": True,
         "calculation_time_ms": 1.5, "error": None},
        {"crypto_id": cid, **{k: None for k in repo.METRIC_COLUMNS}, "calculation_time_ms": 0.25,
         "error": {"code": "internal_error", "message": 'bad "quote", comma\nnewline \\ backslash\ttab'}},
    ]
    params = {"rsi_period": 14, "note": 'x"y'}
    with empty_db.begin() as conn:
        assert repo.save_results(conn, "00000000-0000-0000-0000-0000000000aa", 1, params, results) == 2
    with empty_db.connect() as conn:
        rows = conn.execute(text("SELECT * FROM crypto_backtest_results ORDER BY id")).mappings().all()
    for stored, sent in zip(rows, results):
        for col in repo.METRIC_COLUMNS:
            assert stored[col] == sent.get(col), col
        assert stored["calculation_time_ms"] == sent["calculation_time_ms"]
        assert stored["error"] == sent["error"]
        assert stored["parameters"] == params and stored["parameters_hash"] == repo.parameters_hash(params)
    assert json.dumps(rows[1]["error"])  # JSONB came back as the same structure


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_other_start_methods_give_identical_results(demo_db, service, start_method) -> None:
    """Everything sent to the warm pool must pickle: spawn/forkserver workers import it afresh."""
    from api.services.fanout import shutdown_pools

    other = CryptoBacktestService(service.engine, service.db_config, start_method=start_method)
    try:
        par = other.run_strategy_against_all_cryptos(1, {"rsi_period": 9}, use_parallel=True, store=False)
        sweep = other.run_parameter_sweep(1, [{"rsi_period": 9}], use_parallel=True, store=False)
    finally:
        shutdown_pools()
    seq = service.run_strategy_against_all_cryptos(1, {"rsi_period": 9}, use_parallel=False, store=False)
    assert par["summary"]["parallel"] is True
    assert _without_timing(par["results"]) == _without_timing(seq["results"])
    assert _without_timing(sweep["settings"][0]["results"]) == _without_timing(seq["results"])


@pytest.mark.parametrize("use_parallel", [False, True])
def test_closes_read_ahead_never_outlive_their_batch(demo_db, service, use_parallel) -> None:
    """Tasks take their closes from a read-ahead buffer filled per group of cryptos; new candles
    stored between two batches must show in the second, and every crypto is still read exactly."""
    from api.services import read_ahead

    def candles(out):
        return {r["symbol"]: r["candles"] for r in out["results"]}

    first = service.run_strategy_against_all_cryptos(1, {}, use_parallel=use_parallel, store=False)
    with demo_db.begin() as conn:
        crypto = repo.find_crypto(conn, symbol="SYN003")
        last = conn.execute(text("SELECT max(time) FROM crypto_prices WHERE crypto_id = :c"),
                            {"c": crypto["id"]}).scalar_one()
        conn.execute(text("INSERT INTO crypto_prices VALUES (:c, :t + interval '1 day', 1, 1, 1, 1, 1)"),
                     {"c": crypto["id"], "t": last})
    second = service.run_strategy_against_all_cryptos(1, {}, use_parallel=use_parallel, store=False)
    grown = {s: n + (s == "SYN003") for s, n in candles(first).items()}
    assert candles(second) == grown
    with demo_db.connect() as conn:  # the very closes the database holds, crypto by crypto
        for r in second["results"]:
            stored = repo.load_candles(conn.connection.driver_connection, r["crypto_id"])
            assert len(stored) == r["candles"]
    assert read_ahead.current_plan() is None  # nothing left behind in this thread
