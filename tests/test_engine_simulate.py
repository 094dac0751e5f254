"""Simulator: fills, fees, equity curve and edge cases, worked by hand."""

import numpy as np
import pytest

from api.engine import compute_metrics, simulate_long_only

FEE = 0.001  # transaction_fee 0.1 %


def _signals(n: int, idx: list[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


def test_two_round_trips_worked_by_hand() -> None:
    close = np.array([100.0, 90.0, 110.0, 120.0, 100.0, 80.0, 130.0, 125.0])
    # bar 0 sell while flat and bar 2 buy while long are ignored
    buy = _signals(8, [1, 2, 5])
    sell = _signals(8, [0, 3, 6])
    sim = simulate_long_only(close, buy, sell, 10000.0, FEE)

    # trade 1: buy bar 1 @ 90: units = 10000 * 0.999 / 90 = 9990 / 90 = 111
    #          sell bar 3 @ 120: cash = 111 * 120 * 0.999 = 13320 * 0.999 = 13306.68
    units1 = 10000 * (1 - FEE) / 90
    cash1 = units1 * 120 * (1 - FEE)
    assert units1 == pytest.approx(111.0)
    assert cash1 == pytest.approx(13306.68)
    # trade 2: buy bar 5 @ 80: units = 13306.68 * 0.999 / 80 = 166.1671665
    #          sell bar 6 @ 130: cash = units * 130 * 0.999 = 21580.4301...
    units2 = cash1 * (1 - FEE) / 80
    cash2 = units2 * 130 * (1 - FEE)
    assert cash2 == pytest.approx(13306.68 * 0.999 * 0.999 * 130 / 80)

    t1, t2 = sim.trades
    assert (t1.entry_index, t1.exit_index, t1.entry_price, t1.exit_price) == (1, 3, 90.0, 120.0)
    assert t1.units == pytest.approx(units1, rel=1e-12)
    assert t1.entry_value == pytest.approx(10000.0, rel=1e-12)
    assert t1.exit_value == pytest.approx(cash1, rel=1e-12)
    assert t1.pnl == pytest.approx(3306.68, rel=1e-9)
    assert t1.return_pct == pytest.approx(33.0668, rel=1e-9)
    assert t1.is_open is False

    assert (t2.entry_index, t2.exit_index, t2.entry_price, t2.exit_price) == (5, 6, 80.0, 130.0)
    assert t2.units == pytest.approx(units2, rel=1e-12)
    assert t2.entry_value == pytest.approx(cash1, rel=1e-12)
    assert t2.exit_value == pytest.approx(cash2, rel=1e-12)
    assert t2.pnl == pytest.approx(cash2 - cash1, rel=1e-12)
    assert t2.return_pct == pytest.approx((cash2 / cash1 - 1) * 100, rel=1e-9)
    assert t2.is_open is False

    expected_equity = [
        10000.0,        # flat
        units1 * 90,    # bought: 9990 (the fee is gone)
        units1 * 110,   # 12210
        cash1,          # sold
        cash1,
        units2 * 80,    # bought again
        cash2,          # sold
        cash2,
    ]
    assert sim.equity.dtype == np.float64
    assert sim.equity == pytest.approx(expected_equity, rel=1e-12)
    assert sim.equity[1] == pytest.approx(9990.0) and sim.equity[2] == pytest.approx(12210.0)
    assert sim.position.tolist() == [False, True, True, False, False, True, False, False]
    assert sim.final_value == pytest.approx(cash2, rel=1e-12)
    assert isinstance(sim.final_value, float)


# (n, buy bars, sell bars, expected (entry, exit) pairs; exit None = still open)
SCENARIOS = [
    pytest.param(6, [1], [4], [(1, 4)], id="simple"),
    pytest.param(6, [1, 2, 3], [4, 5], [(1, 4)], id="buys-while-long-ignored"),
    pytest.param(6, [3], [0, 1, 5], [(3, 5)], id="sells-while-flat-ignored"),
    pytest.param(6, [1, 3], [1, 3], [(1, 3)], id="one-fill-per-bar"),
    pytest.param(6, [0, 2, 4], [1, 3, 5], [(0, 1), (2, 3), (4, 5)], id="alternating"),
    pytest.param(6, [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5], [(0, 1), (2, 3), (4, 5)],
                 id="both-every-bar"),
    pytest.param(6, [2], [], [(2, None)], id="never-sold-open"),
    pytest.param(6, [1, 5], [3], [(1, 3), (5, None)], id="buy-on-last-bar-open"),
    pytest.param(6, [], [2, 3], [], id="no-buys"),
]


@pytest.mark.parametrize(("n", "buys", "sells", "expected"), SCENARIOS)
def test_signal_scenarios(n: int, buys: list[int], sells: list[int], expected: list) -> None:
    close = np.linspace(100.0, 110.0, n)
    sim = simulate_long_only(close, _signals(n, buys), _signals(n, sells), 1000.0, FEE)
    assert [(t.entry_index, t.exit_index) for t in sim.trades] == expected
    assert [t.is_open for t in sim.trades] == [x is None for _, x in expected]
    held = np.zeros(n, dtype=bool)
    for entry, exit_ in expected:
        held[entry:exit_ if exit_ is not None else n] = True
    assert sim.position.tolist() == held.tolist()


def test_open_position_marked_to_market_without_exit_fee() -> None:
    close = np.array([100.0, 80.0, 120.0, 150.0])
    sim = simulate_long_only(close, _signals(4, [1]), _signals(4, []), 10000.0, FEE)
    # units = 10000 * 0.999 / 80 = 124.875; marked at 150 -> 18731.25 (no exit fee)
    (trade,) = sim.trades
    assert trade.is_open is True
    assert trade.exit_index is None and trade.exit_price is None
    assert trade.units == pytest.approx(124.875, rel=1e-12)
    assert trade.exit_value == pytest.approx(18731.25, rel=1e-12)
    assert trade.pnl == pytest.approx(8731.25, rel=1e-12)
    assert trade.return_pct == pytest.approx(87.3125, rel=1e-12)
    assert sim.final_value == pytest.approx(18731.25, rel=1e-12)
    assert sim.position.tolist() == [False, True, True, True]

    m = compute_metrics(close, sim, 10000.0, FEE, 365.0)
    assert m["num_trades"] == 0
    assert m["open_position"] is True
    assert m["total_return"] == pytest.approx(87.3125, rel=1e-12)
    assert m["win_rate"] == 0.0


def test_no_signals_keeps_cash() -> None:
    close = np.array([100.0, 50.0, 200.0, 75.0])
    no = np.zeros(4, dtype=bool)
    sim = simulate_long_only(close, no, no, 10000.0, FEE)
    assert sim.trades == ()
    assert sim.equity.tolist() == [10000.0] * 4
    assert not sim.position.any()
    assert sim.final_value == 10000.0


def test_zero_fee_round_trip_is_exact() -> None:
    close = np.array([10.0, 20.0, 40.0])
    sim = simulate_long_only(close, _signals(3, [0]), _signals(3, [2]), 500.0, 0.0)
    assert sim.final_value == pytest.approx(2000.0, rel=1e-15)


def test_mismatched_shapes_rejected() -> None:
    with pytest.raises(ValueError):
        simulate_long_only(np.ones(3), np.zeros(2, bool), np.zeros(3, bool), 1.0, 0.0)
