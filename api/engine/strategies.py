"""Strategy registry: parameter specs (for validation/docs) plus runners.

The specs are plain data so the HTTP layer can validate input and publish a
schema without knowing anything about how each strategy is computed.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import InsufficientDataError, InvalidPriceDataError
from .indicators import check_rsi_period, kernel_array
from .kernels import STATS_SIZE, TRADE_COLUMNS, rsi_strategy_kernel
from .simulate import Trade


@dataclass(frozen=True)
class ParameterSpec:
    """Bounds and default of one strategy parameter."""

    name: str
    type: Literal["integer", "number"]
    default: float
    min: float
    max: float
    exclusive_min: bool = False
    exclusive_max: bool = False
    description: str = ""

    def as_schema(self) -> dict[str, Any]:
        """JSON-friendly description, published so clients can build forms."""
        return {
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "exclusive_min": self.exclusive_min,
            "exclusive_max": self.exclusive_max,
            "description": self.description,
        }


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: its parameters, cross-field rules and runner."""

    code: str
    name: str
    description: str
    parameters: tuple[ParameterSpec, ...]
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]]
    run: Callable[..., "BacktestOutcome"]

    def parameter_schema(self) -> dict[str, dict[str, Any]]:
        """Schema of every parameter keyed by name."""
        return {p.name: p.as_schema() for p in self.parameters}

    def defaults(self) -> dict[str, float]:
        """Default values, used to fill parameters the client omitted."""
        return {p.name: p.default for p in self.parameters}


@dataclass(frozen=True)
class BacktestOutcome:
    """Everything a run produces; the caller decides what to persist/return."""

    metrics: dict[str, float | int | bool | None]
    trades: tuple[Trade, ...]
    equity: np.ndarray
    rsi: np.ndarray


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def check_rsi_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Cross-field rules that single-parameter bounds cannot express."""
    low = params.get("oversold_threshold")
    high = params.get("overbought_threshold")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low >= high:
        return [("oversold_threshold", f"must be less than overbought_threshold ({_fmt(high)})")]
    return []


def _as_price_array(close: Any) -> np.ndarray:
    """`close` as a 1-D float64 array (InvalidPriceDataError if it is not one)."""
    try:
        arr = np.asarray(close, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPriceDataError(f"close prices must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidPriceDataError(f"close prices must be 1-D, got shape {arr.shape}")
    return arr


def _validate_close(close: Any) -> np.ndarray:
    """Reject prices that would silently produce garbage (NaN, <= 0, 2-D)."""
    arr = _as_price_array(close)
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        i = int(bad[0])
        raise InvalidPriceDataError(
            f"close prices must be finite and > 0; {bad.size} bad value(s), "
            f"first at index {i}: {arr[i]!r}"
        )
    return arr


def _check_run_args(n: int, period: int, fee_rate: float, bars_per_year: float) -> None:
    """The argument checks of compute_rsi, simulate_long_only and compute_metrics."""
    if n < period + 1:
        raise InsufficientDataError(
            f"RSI({period}) needs at least {period + 1} candles, got {n}"
        )
    if not 0.0 <= fee_rate < 1.0:
        raise ValueError(f"fee_rate must be in [0, 1), got {fee_rate}")
    if bars_per_year <= 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")


_new_object = object.__new__
_set_attribute = object.__setattr__


def _frozen(cls: type, fields: dict[str, Any]) -> Any:
    """A frozen-dataclass instance from a complete field dict, bypassing __init__.

    The generated __init__ of a frozen dataclass pays one object.__setattr__
    per field; installing the ready __dict__ gives the very same object
    (equality, hash, repr, pickling) about 3x cheaper. Only for the engine's
    own dataclasses, whose fields have no defaults or __post_init__ to run.
    """
    obj = _new_object(cls)
    _set_attribute(obj, "__dict__", fields)
    return obj


def _trades_from_tables(trade_idx: np.ndarray, trade_val: np.ndarray, k: int) -> tuple[Trade, ...]:
    """Trade objects for the kernel's first `k` trade rows (the last may be open).

    Built like `_frozen` (dict literal per trade): ~1 us per trade instead of
    ~2.5 us through Trade(...).
    """
    if k == 0:
        return ()
    trades = []
    append = trades.append
    for (entry, exit_), (entry_price, exit_price, units, entry_value, exit_value, pnl, ret) in zip(
        trade_idx[:k].tolist(), trade_val[:k].tolist()
    ):
        obj = _new_object(Trade)
        if exit_ < 0:
            _set_attribute(obj, "__dict__", {
                "entry_index": entry, "exit_index": None,
                "entry_price": entry_price, "exit_price": None,
                "units": units, "entry_value": entry_value, "exit_value": exit_value,
                "pnl": pnl, "return_pct": ret, "is_open": True,
            })
        else:
            _set_attribute(obj, "__dict__", {
                "entry_index": entry, "exit_index": exit_,
                "entry_price": entry_price, "exit_price": exit_price,
                "units": units, "entry_value": entry_value, "exit_value": exit_value,
                "pnl": pnl, "return_pct": ret, "is_open": False,
            })
        append(obj)
    return tuple(trades)


def run_rsi_strategy(
    close: np.ndarray, params: Mapping[str, float], bars_per_year: float = 365.0, with_trades: bool = True
) -> BacktestOutcome:
    """Buy when RSI < oversold, sell when RSI > overbought (params pre-validated).

    Same results as compute_rsi -> simulate_long_only -> compute_metrics
    (bit for bit), computed in one compiled pass (`kernels.rsi_strategy_kernel`).
    with_trades=False skips building Trade objects (a batch needs only the
    metrics; the objects cost more than the kernel itself).
    """
    arr = _as_price_array(close)
    try:
        period = check_rsi_period(int(params["rsi_period"]))
        oversold = float(params["oversold_threshold"])
        overbought = float(params["overbought_threshold"])
        initial = float(params["initial_investment"])
        fee_rate = float(params["transaction_fee"]) / 100.0
        bars_per_year = float(bars_per_year)
        _check_run_args(arr.size, period, fee_rate, bars_per_year)
    except (ValueError, TypeError, KeyError):
        _validate_close(arr)  # bad prices are reported first, as they always were
        raise
    flags = arr.flags
    if not (flags.c_contiguous and flags.aligned):
        arr = kernel_array(arr)

    n = arr.size
    rsi = np.empty(n)
    equity = np.empty(n)
    rows = (n - period) // 2 + 1
    trade_idx = np.empty((rows, 2), dtype=np.int64)
    trade_val = np.empty((rows, TRADE_COLUMNS))
    stats = np.empty(STATS_SIZE)
    k = rsi_strategy_kernel(
        arr, period, oversold, overbought, initial, fee_rate, bars_per_year,
        rsi, equity, trade_idx, trade_val, stats,
    )
    if k < 0:
        _validate_close(arr)  # raises InvalidPriceDataError with the details
        raise AssertionError("kernel rejected prices that _validate_close accepts")

    # NaN (or inf) -> None; `x - x == 0.0` is the cheapest finiteness test.
    (total_return, final_value, hold_return, num_trades, win_rate, max_drawdown,
     sharpe, sortino, exposure, profit_factor, open_position) = stats.tolist()
    metrics = {
        "total_return": total_return if total_return - total_return == 0.0 else None,
        "final_value": final_value if final_value - final_value == 0.0 else None,
        "buy_and_hold_return": hold_return if hold_return - hold_return == 0.0 else None,
        "num_trades": int(num_trades),
        "win_rate": win_rate if win_rate - win_rate == 0.0 else None,
        "max_drawdown": max_drawdown if max_drawdown - max_drawdown == 0.0 else None,
        "sharpe_ratio": sharpe if sharpe - sharpe == 0.0 else None,
        "sortino_ratio": sortino if sortino - sortino == 0.0 else None,
        "exposure": exposure if exposure - exposure == 0.0 else None,
        "profit_factor": profit_factor if profit_factor - profit_factor == 0.0 else None,
        "open_position": open_position != 0.0,
    }
    return _frozen(BacktestOutcome, {
        "metrics": metrics,
        "trades": _trades_from_tables(trade_idx, trade_val, k) if with_trades else (),
        "equity": equity,
        "rsi": rsi,
    })


RSI_BUY_SELL = StrategySpec(
    code="rsi_buy_sell",
    name="RSI buy/sell",
    description=(
        "Long only: buy with all cash when RSI drops below the oversold "
        "threshold, sell everything when it rises above the overbought one."
    ),
    parameters=(
        ParameterSpec("initial_investment", "number", 10000, 0, 1e12,
                      exclusive_min=True, description="Cash at the start, in quote currency (USDT)."),
        ParameterSpec("transaction_fee", "number", 0.1, 0, 100, exclusive_max=True,
                      description="Fee per fill as a percent of notional (0.1 means 0.1 %)."),
        ParameterSpec("rsi_period", "integer", 14, 2, 1000,
                      description="Wilder RSI look-back in bars."),
        ParameterSpec("oversold_threshold", "number", 30, 0, 100,
                      description="Buy with all cash when flat and RSI falls below this."),
        ParameterSpec("overbought_threshold", "number", 70, 0, 100,
                      description="Sell everything when long and RSI rises above this."),
    ),
    check=check_rsi_params,
    run=run_rsi_strategy,
)

STRATEGIES: dict[str, StrategySpec] = {RSI_BUY_SELL.code: RSI_BUY_SELL}


def get_strategy(code: str) -> StrategySpec:
    """Look up a strategy; KeyError lists the known codes to help the caller."""
    try:
        return STRATEGIES[code]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise KeyError(f"unknown strategy {code!r}; known strategies: {known}") from None
