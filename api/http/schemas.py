"""Request bodies as pydantic models: strict types, unknown fields rejected.

Strategy parameters are an open object here; their rules live with the
strategy (its stored schema) and are checked by the service.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.services.selection import SYMBOL_PATTERN  # noqa: E402 - the one definition of a symbol's shape
from api.services.walkforward import MAX_DAYS, MIN_DAYS, RANK_METRICS, SELECTS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _parallel_mode(value: Any) -> bool | str:
    if value is True or value is False or value == "auto":
        return value
    raise ValueError('must be true, false or "auto"')


ParallelMode = Annotated[Any, BeforeValidator(_parallel_mode),
                         WithJsonSchema({"enum": [True, False, "auto"], "default": True})]


def _integral(value: Any) -> Any:
    """14.0 is the integer 14 in JSON (and JSON Schema); 14.5, "14" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[int, BeforeValidator(_integral), Field(ge=1, le=2**31 - 1),
               WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 2**31 - 1})]


Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
Instant = Annotated[str, Field(min_length=10, max_length=40,
                               description="ISO 8601 date or datetime, UTC unless it has an offset; a date as "
                                           "`end` includes that whole day")]


class _Span(_Strict):
    start: Instant | None = None
    end: Instant | None = None


class _Selected(_Span):
    symbols: list[Symbol] | None = Field(default=None, min_length=1, max_length=10_000)


class BatchBacktestRequest(_Selected):
    """POST /api/crypto/backtest/all"""

    strategy_id: Id
    parameters: dict[str, Any]
    use_parallel: ParallelMode = True
    use_cache: bool = Field(default=True, description="answer from stored results where they are current; "
                                                      "false computes every crypto again")


class SweepBacktestRequest(_Selected):
    """POST /api/crypto/backtest/sweep: several parameter sets against every crypto."""

    strategy_id: Id
    parameter_sets: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=500)
    grid: dict[str, Any] | None = Field(default=None, description="parameter -> [values] or {start, stop, step}; "
                                                                  "every valid combination runs")
    fixed: dict[str, Any] | None = Field(default=None, description="with grid: the values of other parameters")
    rank_by: str = Field(default="median_return", description="with grid: median_return, mean_return, "
                                                              "beat_buy_and_hold, mean_sharpe or worst_drawdown")
    top: int = Field(default=10, ge=1, le=100, description="with grid: how many best settings carry their rows")
    use_parallel: ParallelMode = True
    store: bool = True
    use_cache: bool = Field(default=True, description="with grid: answer each crypto from its stored rows for "
                                                      "these settings where they are current; false computes all")


class MonteCarloRequest(_Selected):
    """POST /api/crypto/backtest/montecarlo: how much of a strategy's result is luck, on every crypto."""

    strategy_id: Id
    parameters: dict[str, Any]
    method: str = Field(default="trades", description="trades: closed trades' returns drawn with replacement; "
                                                      "bars: a moving-block bootstrap of the candles, strategy "
                                                      "re-run on each path",
                        json_schema_extra={"enum": ["trades", "bars"]})
    paths: int = Field(default=1_000, ge=1, le=10_000)
    block_bars: int = Field(default=20, ge=1, le=1_000_000, description="bars: the length of a bootstrap block")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="the same seed gives the same answer, at any "
                                                                  "worker count")
    use_parallel: ParallelMode = True
    store: bool = True


Days = Annotated[float, Field(ge=MIN_DAYS, le=MAX_DAYS)]


class WalkForwardRequest(_Selected):
    """POST /api/crypto/backtest/walkforward: does the grid's best setting hold out of sample?"""

    strategy_id: Id
    grid: dict[str, Any] = Field(description="as /sweep: parameter -> [values] or {start, stop, step}")
    fixed: dict[str, Any] | None = Field(default=None, description="the values of other parameters")
    train_days: Days = Field(description="length of each train span, in days")
    test_days: Days = Field(description="length of each test span, in days")
    step_days: Days | None = Field(default=None, description="how far each window moves on (default test_days; "
                                                              "at least test_days)")
    anchored: bool = Field(default=False, description="every train span starts at the first candle")
    rank_by: str = Field(default="sharpe_ratio", description="the metric a window's best setting is chosen by "
                                                             "(max_drawdown: the lowest)",
                         json_schema_extra={"enum": list(RANK_METRICS)})
    select: str = Field(default="per_crypto", description="per_crypto: each crypto's own best; universe: the "
                                                          "setting with the best median over all cryptos",
                        json_schema_extra={"enum": list(SELECTS)})
    equity_curve: bool = Field(default=True, description="each crypto's chained out-of-sample equity curve")
    use_parallel: ParallelMode = True
    store: bool = True


class SingleBacktestRequest(_Span):
    """POST /api/crypto/backtest: exactly one of crypto_id or symbol."""

    strategy_id: Id
    parameters: dict[str, Any]
    crypto_id: Id | None = None
    symbol: str | None = Field(default=None, pattern=SYMBOL_PATTERN)
    store: bool = Field(default=True, description="store it as a batch of kind single (false: only answer it, "
                                                 "as the dashboard does when it opens a crypto)")


class JobRequest(_Strict):
    """POST /api/jobs: one of the long routes' bodies, run by a job runner."""

    kind: str = Field(description="all, sweep, walkforward or montecarlo", json_schema_extra={
        "enum": ["all", "sweep", "walkforward", "montecarlo"]})
    request: dict[str, Any] = Field(description="the body that route takes")
