"""The flask CLI: seed-demo loads with COPY and is idempotent; backtest-all prints the ranked table."""
from __future__ import annotations

import numpy as np

from api.db import repository as repo
from api.demo_data import generate_demo_cryptos


def test_seed_demo_loads_exact_candles_and_skips_when_present(runner, empty_db) -> None:
    out = runner.invoke(args=["seed-demo", "--cryptos", "3", "--candles", "50", "--seed", "11"])
    assert out.exit_code == 0, out.output
    assert "loaded 3 synthetic cryptos, 150 candles" in out.output
    again = runner.invoke(args=["seed-demo", "--cryptos", "3", "--candles", "50"])
    assert "nothing loaded" in again.output
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 150
        crypto = repo.find_crypto(conn, symbol="SYN002")
        prices = repo.load_closes(conn.connection.driver_connection, crypto["id"], with_times=True)
        times, close = prices.times, prices.close
    expected = generate_demo_cryptos(n_cryptos=3, n_candles=50, seed=11)[1]
    assert np.array_equal(close, expected.close)  # bit for bit through binary COPY
    assert np.array_equal(times, expected.times.astype("datetime64[s]").astype(np.int64))


def test_backtest_all_prints_ranked_table(runner, demo_db) -> None:
    out = runner.invoke(args=["backtest-all", "--strategy-id", "1", "--sequential", "--param", "rsi_period=10"])
    assert out.exit_code == 0, out.output
    lines = [ln for ln in out.output.splitlines() if ln[:4].strip().isdigit()]
    assert len(lines) == 24
    returns = [float(ln.split()[2]) for ln in lines]
    assert returns == sorted(returns, reverse=True)
    assert "24 successful, 0 failed" in out.output and "parallel=False" in out.output


def test_backtest_all_reports_bad_parameters(runner, demo_db) -> None:
    out = runner.invoke(args=["backtest-all", "--param", "rsi_period=1"])
    assert out.exit_code != 0
    assert "parameters.rsi_period" in out.output
