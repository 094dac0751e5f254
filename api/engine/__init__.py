"""Backtest engine: numpy + numba kernels (no web/DB imports, so it is usable anywhere)."""

from .errors import EngineError, InsufficientDataError, InvalidPriceDataError
from .indicators import compute_rsi
from .jit import warm_up
from .metrics import compute_metrics
from .simulate import SimulationResult, Trade, simulate_long_only
from .strategies import (
    RSI_BUY_SELL,
    STRATEGIES,
    BacktestOutcome,
    ParameterSpec,
    StrategySpec,
    get_strategy,
    run_rsi_strategy,
)

__all__ = [
    "EngineError",
    "InsufficientDataError",
    "InvalidPriceDataError",
    "compute_rsi",
    "compute_metrics",
    "SimulationResult",
    "Trade",
    "simulate_long_only",
    "RSI_BUY_SELL",
    "STRATEGIES",
    "BacktestOutcome",
    "ParameterSpec",
    "StrategySpec",
    "get_strategy",
    "run_rsi_strategy",
    "warm_up",
]
