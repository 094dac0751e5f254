"""The flask CLI: seed-demo loads with COPY and is idempotent; backtest-all prints the ranked table."""
from __future__ import annotations

import re

import pytest

import orjson

import numpy as np
import pandas as pd
from sqlalchemy import text

from api.db import repository as repo
from api.demo_data import generate_demo_cryptos
from tests.pg import assert_candle_series_matches_prices


def test_seed_demo_loads_exact_candles_and_skips_when_present(runner, empty_db) -> None:
    out = runner.invoke(args=["seed-demo", "--cryptos", "3", "--candles", "50", "--seed", "11"])
    assert out.exit_code == 0, out.output
    assert "loaded 3 synthetic cryptos, 150 candles" in out.output
    again = runner.invoke(args=["seed-demo", "--cryptos", "3", "--candles", "50"])
    assert "nothing loaded" in again.output
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 150
        crypto = repo.find_crypto(conn, symbol="SYN002")
        prices = repo.load_candles(conn.connection.driver_connection, crypto["id"])
        times, close = prices.time, prices.close
    expected = generate_demo_cryptos(n_cryptos=3, n_candles=50, seed=11)[1]
    assert np.array_equal(close, expected.close)  # bit for bit through binary COPY
    assert np.array_equal(times, expected.times.astype("datetime64[s]").astype(np.int64))


def test_seed_demo_force_replaces_the_demo_set_and_keeps_imported_cryptos(runner, client, tmp_path, empty_db) -> None:
    assert runner.invoke(args=["seed-demo", "--cryptos", "3", "--candles", "50"]).exit_code == 0
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=5).strftime("%Y-%m-%d"), "open": 1.0,
                          "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0})
    frame.to_csv(tmp_path / "OWNUSDT.csv", index=False)
    assert runner.invoke(args=["import-prices", str(tmp_path / "OWNUSDT.csv")]).exit_code == 0
    batch = client.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}, "use_parallel": False})
    assert batch.status_code == 200
    for _ in range(2):
        out = runner.invoke(args=["seed-demo", "--force", "--cryptos", "2", "--candles", "40", "--seed", "5"])
        assert out.exit_code == 0, out.output
        assert "loaded 2 synthetic cryptos, 80 candles (replacing" in out.output
    with empty_db.connect() as conn:
        symbols = conn.execute(text("SELECT symbol FROM cryptocurrencies ORDER BY symbol")).scalars().all()
        assert symbols == ["OWNUSDT", "SYN001", "SYN002"]
        assert repo.count_prices(conn) == 80 + 5
        orphans = conn.execute(text("SELECT count(*) FROM crypto_backtest_results r WHERE NOT EXISTS "
                                    "(SELECT 1 FROM cryptocurrencies c WHERE c.id = r.crypto_id)")).scalar_one()
        assert orphans == 0
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="SYN002")["id"])
        assert_candle_series_matches_prices(conn)
    assert np.array_equal(got.close, generate_demo_cryptos(n_cryptos=2, n_candles=40, seed=5)[1].close)
    assert "replaced" in runner.invoke(args=["seed-demo", "--help"]).output


def test_backtest_all_takes_a_strategy_by_code_with_parameters(runner, demo_db) -> None:
    out = runner.invoke(args=["backtest-all", "--strategy", "sma_cross", "--sequential", "--json",
                              "--param", "fast_period=5", "--param", "slow_period=12",
                              "--param", "execution=next_open", "--param", "stop_loss_pct=5"])
    assert out.exit_code == 0, out.output
    summary = orjson.loads(out.output)["summary"]
    assert summary["strategy_id"] == 2 and summary["successful"] == 24
    assert summary["parameters"]["execution"] == "next_open" and summary["parameters"]["stop_loss_pct"] == 5.0
    bad = runner.invoke(args=["backtest-all", "--strategy", "sma_cross", "--param", "fast_period=20",
                              "--param", "slow_period=10"])
    assert bad.exit_code != 0 and "parameters.fast_period: must be less than slow_period" in bad.output
    unknown = runner.invoke(args=["backtest-all", "--strategy", "nope"])
    assert unknown.exit_code != 0 and "known: 1 rsi, 2 sma_cross" in unknown.output


def test_backtest_all_prints_ranked_table(runner, demo_db) -> None:
    out = runner.invoke(args=["backtest-all", "--strategy-id", "1", "--sequential", "--param", "rsi_period=10"])
    assert out.exit_code == 0, out.output
    lines = [ln for ln in out.output.splitlines() if ln[:4].strip().isdigit()]
    assert len(lines) == 24
    returns = [float(ln.split()[2]) for ln in lines]
    assert returns == sorted(returns, reverse=True)
    assert "24 successful, 0 failed" in out.output and "parallel=False" in out.output


@pytest.mark.parametrize("args, total", [
    (["backtest-all", "--sequential"], 24),  # in cryptos
    (["sweep", "--grid", "rsi_period=7,14", "--sequential", "--no-store"], 48),  # in backtests
    (["montecarlo", "--paths", "5", "--symbols", "SYN001,SYN002", "--sequential", "--no-store"], 10),  # in paths
])
def test_the_progress_bar_is_fed_by_the_service_counter_and_ends_at_its_total(runner, demo_db, args, total) -> None:
    out = runner.invoke(args=[*args, "--progress"])
    assert out.exit_code == 0, out.output
    counts = [tuple(float(n) for n in m) for m in re.findall(r"([\d.]+)/([\d.]+) \[", out.stderr)]
    assert counts and counts[-1] == (total, total) and all(t == total for _, t in counts), out.stderr
    assert [d for d, _ in counts] == sorted(d for d, _ in counts)  # it only moves forward
    assert "/" not in out.stdout.splitlines()[0]  # the bar stays on stderr, out of the table
    assert "[" not in runner.invoke(args=args).stderr  # no terminal, no --progress: no bar


def test_backtest_all_reports_bad_parameters(runner, demo_db) -> None:
    out = runner.invoke(args=["backtest-all", "--param", "rsi_period=1"])
    assert out.exit_code != 0
    assert "parameters.rsi_period" in out.output


def test_import_prices_prints_unchanged_rows_and_keeps_the_bar_out_of_the_results(runner, empty_db, tmp_path) -> None:
    """A re-import says its rows were unchanged; the output is the result lines only, one per line."""
    for name, seed in (("AAAUSDT", 1), ("BBBUSDT", 2)):
        frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=5).strftime("%Y-%m-%d"), "open": 1.0,
                              "high": 2.0, "low": 0.5, "close": 1.0 + seed / 10, "volume": 1.0})
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    for unchanged in (0, 5):
        out = runner.invoke(args=["import-prices", str(tmp_path)])
        assert out.exit_code == 0, out.output
        assert out.output.splitlines() == [
            f"{name}.csv: {name} 1d: read 5, stored 5 ({unchanged} unchanged), rejected 0"
            for name in ("AAAUSDT", "BBBUSDT")], out.output
