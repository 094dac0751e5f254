"""Monte Carlo resampling (issue 12): seeds per path, trades with replacement, candles by moving blocks."""
from __future__ import annotations

import numpy as np
import pytest

from api.engine import InsufficientDataError, get_strategy, make_candles, metrics_of, run_backtest
from api.engine.resampling import block_bootstrap, bootstrap_stats, path_seeds, resample_trades
from api.services.parameters import validate_parameters


def _candles(n: int = 300, seed: int = 3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    return make_candles(open_, high, low, close, rng.uniform(1, 5, n), np.arange(n, dtype=np.int64) * 86_400)


def test_seeds_depend_on_seed_crypto_and_path_only() -> None:
    a = [s.generate_state(2).tolist() for s in path_seeds(7, 42, 5)]
    assert a == [s.generate_state(2).tolist() for s in path_seeds(7, 42, 5)]
    assert a[:3] == [s.generate_state(2).tolist() for s in path_seeds(7, 42, 3)]  # a path's seed ignores the count
    assert a != [s.generate_state(2).tolist() for s in path_seeds(8, 42, 5)]
    assert a != [s.generate_state(2).tolist() for s in path_seeds(7, 43, 5)]
    assert len({tuple(x) for x in a}) == 5


def test_one_trade_repeated_gives_a_degenerate_distribution_equal_to_it() -> None:
    final, drawdown = resample_trades(np.array([2.0, 2.0, 2.0]), 1, 1, 50)
    assert np.allclose(final, (1.02 ** 3 - 1) * 100, rtol=0, atol=1e-12) and np.all(drawdown == 0.0)
    final, drawdown = resample_trades(np.array([-5.0]), 1, 1, 10)
    assert np.allclose(final, -5.0) and np.allclose(drawdown, 5.0)


def test_trades_are_drawn_with_replacement_so_the_final_return_varies() -> None:
    returns = np.array([10.0, -8.0, 3.0, -1.0, 7.0, -4.0])
    final, drawdown = resample_trades(returns, 5, 9, 2_000)
    assert final.std() > 1.0  # a permutation would give one value: prod(1 + r) is order-free
    assert np.all((drawdown >= 0) & (drawdown <= 100))
    q = np.percentile(final, [5, 25, 50, 75, 95])
    assert np.all(np.diff(q) >= 0)
    again, _ = resample_trades(returns, 5, 9, 2_000)
    assert np.array_equal(final, again)
    assert np.array_equal(resample_trades(np.array([]), 5, 9, 4)[0], np.zeros(4))


@pytest.mark.parametrize("block", [299, 300, 10_000])
def test_a_block_as_long_as_the_returns_reproduces_the_series(block: int) -> None:
    c = _candles()
    path = block_bootstrap(c, block, path_seeds(1, 1, 1)[0])
    for field in ("open", "high", "low", "close", "volume"):
        assert np.allclose(getattr(path, field), getattr(c, field), rtol=1e-12, atol=0), field
    assert np.array_equal(path.time, c.time)


def test_a_bootstrap_path_keeps_the_start_the_length_and_each_candles_shape() -> None:
    c = _candles()
    path = block_bootstrap(c, 20, path_seeds(2, 5, 1)[0])
    assert len(path) == len(c) and path.close[0] == c.close[0] and np.array_equal(path.time, c.time)
    assert not np.allclose(path.close, c.close)
    assert np.all(path.high >= np.maximum(path.open, path.close) * (1 - 1e-12))
    assert np.all(path.low <= np.minimum(path.open, path.close) * (1 + 1e-12))
    log_returns = np.sort(np.log(path.close[1:] / path.close[:-1]))
    original = np.log(c.close[1:] / c.close[:-1])
    assert np.all(np.isin(np.round(log_returns, 12), np.round(original, 12)))  # every return is one of the originals
    again = block_bootstrap(c, 20, path_seeds(2, 5, 1)[0])
    assert np.array_equal(again.close, path.close)


def test_bad_bootstrap_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        block_bootstrap(_candles(1), 5, path_seeds(1, 1, 1)[0])
    with pytest.raises(ValueError):
        block_bootstrap(_candles(), 0, path_seeds(1, 1, 1)[0])


@pytest.mark.parametrize("params", [{}, {"execution": "next_open", "stop_loss_pct": 3.0, "rsi_period": 7}])
def test_bootstrap_stats_are_run_backtest_on_each_path(params) -> None:
    """The compiled many-path run gives, row by row, what run_backtest gives on block_bootstrap's path."""
    spec = get_strategy(1)
    full = validate_parameters(spec.parameter_schema(), params, spec.check)
    c = _candles()
    seeds = path_seeds(4, 2, 25)
    stats = bootstrap_stats(spec, c, full, 365.0, 15, 4, 2, 25)
    rows = [metrics_of(row) for row in stats]
    assert rows == [run_backtest(spec, block_bootstrap(c, 15, s), full, 365.0, with_trades=False).metrics
                    for s in seeds]
    assert len({r["total_return"] for r in rows}) > 5  # the paths differ
    with pytest.raises(InsufficientDataError):
        bootstrap_stats(spec, c, {**full, "rsi_period": 400}, 365.0, 15, 4, 2, 25)
