"""Backtest engine: numpy + numba (no web, SQL or I/O imports, so it is usable anywhere).

Candles in, signals from a strategy of the registry, one simulator, one
metrics function: `run_backtest(get_strategy("sma_cross"), candles, params, bars_per_year)`.
"""

from .backtest import BacktestOutcome, SettingsRun, Trade, required_fields, run_backtest, run_settings
from .candles import Candles, candles_from_close, make_candles
from .errors import EngineError, InsufficientDataError, InvalidPriceDataError
from .indicators import compute_rsi
from .jit import warm_up
from .metrics import METRIC_NAMES, METRICS, compute_metrics, metrics_of
from .parameters import COMMON_PARAMETERS, ParameterSpec
from .registry import StrategySpec
from .simulator import Execution, Simulation, simulate
from .strategies import CATALOG, STRATEGIES, get_strategy

__all__ = [
    "BacktestOutcome", "SettingsRun", "Trade", "required_fields", "run_backtest", "run_settings",
    "Candles", "candles_from_close", "make_candles",
    "EngineError", "InsufficientDataError", "InvalidPriceDataError",
    "compute_rsi", "warm_up",
    "METRIC_NAMES", "METRICS", "compute_metrics", "metrics_of",
    "COMMON_PARAMETERS", "ParameterSpec", "StrategySpec",
    "Execution", "Simulation", "simulate",
    "CATALOG", "STRATEGIES", "get_strategy",
]
