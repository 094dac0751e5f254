"""Strategy 1 under the default execution keeps the numbers of the fused RSI kernel it replaced.

The cases below were computed with that kernel (commit c4e8381, before the
engine was rebuilt) and are pinned here to 1e-12 relative: same metrics,
same trades, same equity curve. The closes come from a 32-bit LCG, not from
numpy's generators, so they are the same on every platform and version.
"""
from __future__ import annotations

import pytest

import numpy as np

from api.engine import candles_from_close, get_strategy, run_backtest


def lcg_closes(seed: int, n: int, vol: float = 0.08) -> np.ndarray:
    """A random walk from a 32-bit linear congruential generator (Numerical Recipes constants)."""
    x, price, out = seed, 100.0, []
    for _ in range(n):
        x = (1664525 * x + 1013904223) % 2**32
        price *= 1.0 + (x / 2**32 - 0.5) * vol
        out.append(price)
    return np.array(out)


# (seed, candles, parameters, metrics, trades (entry bar, exit bar, entry price, exit price, units, pnl),
#  last equity, sum of the equity curve)
CASES = [
    (5, 500, {"initial_investment": 10000.0, "transaction_fee": 0.1, "rsi_period": 14, "oversold_threshold": 30.0, "overbought_threshold": 70.0},
     {"total_return": -37.78696988990359, "final_value": 6221.3030110096415, "buy_and_hold_return": -33.347560579265526, "num_trades": 1, "win_rate": 0.0, "max_drawdown": 52.26888359312773, "sharpe_ratio": -0.8831005047727264, "sortino_ratio": -1.2178479518932182, "exposure": 55.400000000000006, "profit_factor": 0.0, "open_position": False},
     [(52, 329, 83.33742491663968, 51.950586478739034, 119.87411430090077, -3778.6969889903585)],
     6221.3030110096415, 3401553.8217700887),
    (7, 1000, {"initial_investment": 10000.0, "transaction_fee": 0.1, "rsi_period": 14, "oversold_threshold": 30.0, "overbought_threshold": 70.0},
     {"total_return": -14.299785549538214, "final_value": 8570.021445046179, "buy_and_hold_return": -63.11985485286697, "num_trades": 2, "win_rate": 50.0, "max_drawdown": 36.518146988572944, "sharpe_ratio": -0.11694732382470605, "sortino_ratio": -0.164803407693238, "exposure": 28.199999999999996, "profit_factor": 1.1371233312778326, "open_position": True},
     [(427, 478, 73.3906322732962, 88.02933467720757, 136.12091476196403, 1970.6509285864267), (647, 788, 59.924275892329845, 51.3515745940593, 199.56320038217635, -1733.0142425025479), (910, None, 43.13587093432073, None, 237.09731200211937, -1667.6152410377)],
     8570.021445046179, 10182601.00154748),
    (42, 600, {"initial_investment": 2500.0, "transaction_fee": 0.5, "rsi_period": 7, "oversold_threshold": 25.0, "overbought_threshold": 75.0},
     {"total_return": 123.53365477472194, "final_value": 5588.341369368049, "buy_and_hold_return": 95.86998064019954, "num_trades": 5, "win_rate": 100.0, "max_drawdown": 11.868859462267752, "sharpe_ratio": 2.133608819180986, "sortino_ratio": 3.555249913699048, "exposure": 32.0, "profit_factor": None, "open_position": False},
     [(7, 40, 85.7523803252907, 113.48448785525368, 29.007941127278176, 775.4915858516911), (54, 126, 96.29861725982319, 105.98312174099782, 33.84383099841424, 293.44890073056786), (178, 193, 110.88468362811615, 123.37728609788903, 32.02512437208167, 362.47658073266575), (348, 392, 136.0631850530941, 162.04367846443282, 28.749584102796923, 703.9778532131695), (459, 487, 128.406087654652, 156.36359231225447, 35.91899753483657, 952.9464488399544)],
     5588.341369368049, 2512310.2778450036),
    (99, 300, {"initial_investment": 10000.0, "transaction_fee": 0.0, "rsi_period": 21, "oversold_threshold": 40.0, "overbought_threshold": 60.0},
     {"total_return": -45.22303589146125, "final_value": 5477.696410853875, "buy_and_hold_return": -42.22947668438925, "num_trades": 0, "win_rate": 0.0, "max_drawdown": 48.320641435228886, "sharpe_ratio": -2.04538896648612, "sortino_ratio": -2.6060619446782227, "exposure": 54.333333333333336, "profit_factor": None, "open_position": True},
     [(137, None, 103.56186520417805, None, 96.56064015730537, -4522.303589146125)],
     5477.696410853875, 2778318.2408413747),
]


SPEC = get_strategy(1)
OLD_METRICS = ("total_return", "final_value", "buy_and_hold_return", "num_trades", "win_rate", "max_drawdown",
               "sharpe_ratio", "sortino_ratio", "exposure", "profit_factor", "open_position")


@pytest.mark.parametrize("seed, n, params, metrics, trades, last, total", CASES, ids=[str(c[0]) for c in CASES])
def test_rsi_keeps_the_fused_kernels_numbers(seed, n, params, metrics, trades, last, total) -> None:
    out = run_backtest(SPEC, candles_from_close(lcg_closes(seed, n)), {**SPEC.defaults(), **params}, 365.0)
    assert set(metrics) == set(OLD_METRICS)
    for name, want in metrics.items():
        got = out.metrics[name]
        if want is None or isinstance(want, bool):
            assert got is want, name
        else:
            assert got == pytest.approx(want, rel=1e-12, abs=0), name
    got_trades = [(t.entry_bar, t.exit_bar, t.entry_price, t.exit_price, t.units, t.pnl) for t in out.trades]
    assert len(got_trades) == len(trades)
    for g, w in zip(got_trades, trades):
        assert g[:2] == w[:2] and (g[3] is None) == (w[3] is None)
        assert [x for x in g[2:] if x is not None] == pytest.approx([x for x in w[2:] if x is not None], rel=1e-12)
    assert float(out.equity[-1]) == pytest.approx(last, rel=1e-12)
    assert float(out.equity.sum()) == pytest.approx(total, rel=1e-12)
