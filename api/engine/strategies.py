"""Strategy registry: parameter specs (for validation/docs) plus runners.

The specs are plain data so the HTTP layer can validate input and publish a
schema without knowing anything about how each strategy is computed.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import InvalidPriceDataError
from .indicators import compute_rsi
from .metrics import compute_metrics
from .simulate import Trade, simulate_long_only


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


def _validate_close(close: Any) -> np.ndarray:
    """Reject prices that would silently produce garbage (NaN, <= 0, 2-D)."""
    try:
        arr = np.asarray(close, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPriceDataError(f"close prices must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidPriceDataError(f"close prices must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        i = int(bad[0])
        raise InvalidPriceDataError(
            f"close prices must be finite and > 0; {bad.size} bad value(s), "
            f"first at index {i}: {arr[i]!r}"
        )
    return arr


def run_rsi_strategy(
    close: np.ndarray, params: Mapping[str, float], bars_per_year: float = 365.0
) -> BacktestOutcome:
    """Buy when RSI < oversold, sell when RSI > overbought (params pre-validated)."""
    close = _validate_close(close)
    rsi = compute_rsi(close, int(params["rsi_period"]))
    with np.errstate(invalid="ignore"):
        buy = rsi < params["oversold_threshold"]
        sell = rsi > params["overbought_threshold"]
    initial = float(params["initial_investment"])
    fee_rate = float(params["transaction_fee"]) / 100.0
    sim = simulate_long_only(close, buy, sell, initial, fee_rate)
    metrics = compute_metrics(close, sim, initial, fee_rate, bars_per_year)
    return BacktestOutcome(metrics=metrics, trades=sim.trades, equity=sim.equity, rsi=rsi)


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
