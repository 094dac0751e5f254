"""The registry: seven strategies, ids fixed, one schema per strategy with the common parameters first."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from api.config import REPO_ROOT
from api.engine import (CATALOG, COMMON_PARAMETERS, InsufficientDataError, InvalidPriceDataError,
                        candles_from_close, get_strategy, make_candles, run_backtest)
from api.engine.numeric import pairwise_sum
from api.services.parameters import validate_parameters
from api.services.errors import ValidationFailed

CODES = ["rsi", "sma_cross", "macd", "bollinger", "donchian", "opening_range_breakout", "buy_and_hold"]


def test_catalog_ids_and_codes_are_designs() -> None:
    assert [(s.id, s.code) for s in CATALOG] == list(enumerate(CODES, start=1))
    for s in CATALOG:
        assert get_strategy(s.id) is s and get_strategy(s.code) is s
    with pytest.raises(KeyError, match="known strategies: 1 rsi, 2 sma_cross"):
        get_strategy("nope")
    with pytest.raises(KeyError):
        get_strategy(8)


def test_every_schema_starts_with_the_common_parameters() -> None:
    common = [p.name for p in COMMON_PARAMETERS]
    assert common == ["initial_investment", "transaction_fee", "slippage_pct", "execution", "stop_loss_pct",
                      "take_profit_pct", "trailing_stop_pct"]
    for s in CATALOG:
        schema = s.parameter_schema()
        assert list(schema)[:len(common)] == common
        for name, rule in schema.items():
            assert rule["description"], (s.code, name)
            assert rule["type"] in ("integer", "number", "string")
        assert schema["execution"]["enum"] == ["close", "next_open"]
        assert schema["stop_loss_pct"]["nullable"] and schema["stop_loss_pct"]["default"] is None
        assert s.json_schema()["additionalProperties"] is False


@pytest.mark.parametrize("code, params, field", [
    ("rsi", {"oversold_threshold": 70, "overbought_threshold": 70}, "parameters.oversold_threshold"),
    ("sma_cross", {"fast_period": 50, "slow_period": 20}, "parameters.fast_period"),
    ("macd", {"fast_period": 26}, "parameters.fast_period"),
    ("opening_range_breakout", {"range_minutes": 120, "session_hours": 2}, "parameters.range_minutes"),
    ("bollinger", {"exit_band": "lower"}, "parameters.exit_band"),
    ("donchian", {"execution": "open"}, "parameters.execution"),
    ("buy_and_hold", {"stop_loss_pct": 100}, "parameters.stop_loss_pct"),
    ("buy_and_hold", {"trailing_stop_pct": 0}, "parameters.trailing_stop_pct"),
    ("buy_and_hold", {"take_profit_pct": "5"}, "parameters.take_profit_pct"),
    ("buy_and_hold", {"initial_investment": 5e-324}, "parameters.initial_investment"),
    ("buy_and_hold", {"slippage_pct": -1}, "parameters.slippage_pct"),
])
def test_bad_parameters_name_the_field(code: str, params: dict, field: str) -> None:
    spec = get_strategy(code)
    with pytest.raises(ValidationFailed) as info:
        validate_parameters(spec.parameter_schema(), params, spec.check)
    assert [e["field"] for e in info.value.errors] == [field]


def test_nullable_and_enum_values_are_kept() -> None:
    spec = get_strategy("bollinger")
    clean = validate_parameters(spec.parameter_schema(), {"stop_loss_pct": 5, "trailing_stop_pct": None,
                                                          "exit_band": "upper", "execution": "next_open"}, spec.check)
    assert clean["stop_loss_pct"] == 5.0 and clean["trailing_stop_pct"] is None
    assert clean["exit_band"] == "upper" and clean["execution"] == "next_open" and clean["period"] == 20


@pytest.mark.parametrize("spec", CATALOG, ids=CODES)
def test_too_short_for_one_signal_is_insufficient_data(spec) -> None:
    candles = candles_from_close([100.0], interval_seconds=900)
    if spec.code == "buy_and_hold":
        assert run_backtest(spec, candles, spec.defaults(), 365.0).metrics["num_trades"] == 0
        return
    with pytest.raises(InsufficientDataError):
        run_backtest(spec, candles, spec.defaults(), 365.0)


def test_opening_range_breakout_needs_intraday_candles() -> None:
    spec = get_strategy("opening_range_breakout")
    daily = candles_from_close(np.linspace(100, 200, 400))
    with pytest.raises(InsufficientDataError, match="candles shorter"):
        run_backtest(spec, daily, spec.defaults(), 365.0)


@pytest.mark.parametrize("index", [0, 5, 99])
@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
def test_bad_prices_are_named(field: str, index: int) -> None:
    arrays = {f: np.linspace(100, 120, 100) for f in ("open", "high", "low", "close")}
    arrays[field][index] = -1.0 if index else np.nan
    with pytest.raises(InvalidPriceDataError, match=f"{field} prices must be finite and > 0; 1 bad value\\(s\\), "
                                                    f"first at index {index}"):
        make_candles(arrays["open"], arrays["high"], arrays["low"], arrays["close"])


def test_times_must_increase() -> None:
    c = np.ones(3)
    with pytest.raises(InvalidPriceDataError, match="strictly increasing; index 2"):
        make_candles(c, c, c, c, None, [0, 60, 60], 60)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 250, 256, 1000, 1827, 8193, 43_799])
def test_pairwise_sum_matches_numpy_sum_exactly(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_t(2, n + 5) * 10.0 ** rng.uniform(-8, 8, n + 5)
    for start in (0, 3):
        assert 0.0 + pairwise_sum(a, start, n) == a[start:start + n].sum()


def test_inputs_of_any_layout_give_the_same_outcome() -> None:
    close = 100 + 10 * np.sin(np.arange(400) / 7.0)
    spec = get_strategy("rsi")
    want = run_backtest(spec, candles_from_close(close), spec.defaults(), 365.0)
    frozen = close.copy()
    frozen.setflags(write=False)
    for variant in (frozen, np.repeat(close, 2)[::2], close.tolist()):
        got = run_backtest(spec, candles_from_close(variant), spec.defaults(), 365.0)
        assert got.trades == want.trades and got.metrics == want.metrics
        np.testing.assert_array_equal(got.equity, want.equity)


def test_warm_up_compiles_everything_callers_use() -> None:
    """After warm_up no run compiles a kernel on demand: one array type per kernel argument."""
    script = (
        "import numpy as np, numba\n"
        "from api.engine import warm_up, CATALOG, run_backtest, candles_from_close, make_candles\n"
        "warm_up()\n"
        "import api.engine.simulator as s, api.engine.metrics as m, api.engine.indicators as i\n"
        "kernels = [v for mod in (s, m, i) for v in vars(mod).values()\n"
        "           if isinstance(v, numba.core.registry.CPUDispatcher)]\n"
        "before = {k.__name__: len(k.signatures) for k in kernels}\n"
        "c = 100 + 10 * np.sin(np.arange(3000) / 5.0)\n"
        "for variant in (c, c[::-1], c.tolist(), c.astype(np.int64)):\n"
        "    candles = make_candles(variant, np.asarray(variant) * 1.02, np.asarray(variant) * 0.98, variant, None,\n"
        "                           np.arange(3000) * 900, 900)\n"
        "    for spec in CATALOG:\n"
        "        for ex in ('close', 'next_open'):\n"
        "            run_backtest(spec, candles, {**spec.defaults(), 'execution': ex, 'stop_loss_pct': 2.0,\n"
        "                                         'trailing_stop_pct': 1.0, 'take_profit_pct': 3.0}, 365.0)\n"
        "after = {k.__name__: len(k.signatures) for k in kernels}\n"
        "assert after == before, (before, after)\n"
        "print(len(kernels))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(out.stdout.split()[-1]) >= 3


def test_engine_import_does_not_compile() -> None:
    """Importing the engine stays cheap; compilation happens in warm_up()."""
    check = ("import api.engine.simulator as s, api.engine.metrics as m; "
             "import sys; sys.exit(1 if s.simulate_kernel.signatures or m.metrics_kernel.signatures else 0)")
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
