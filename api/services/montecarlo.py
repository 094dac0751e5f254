"""Monte Carlo robustness of one strategy on one crypto (issue 12): how much of a result is luck.

Pure, no I/O: the service reads the candles and fans cryptos out. Methods:

* ``trades``: the original run's closed trades' returns, drawn with
  replacement into `paths` sequences of the same length and compounded
  (engine.resampling.resample_trades): distributions of final return and max
  drawdown (of the trade-by-trade equity).
* ``bars``: `paths` synthetic candle series by a moving-block bootstrap of the
  log returns (engine.resampling.bootstrap_stats), the strategy re-run on each:
  distributions of total_return, max_drawdown and sharpe_ratio.

Per crypto: the original metrics, percentiles 5/25/50/75/95 of each
distribution, `probability_of_loss` (% of paths whose return is below 0) and
`original_percentile` (% of paths whose return is below the original's). Path
seeds are spawned from (seed, crypto id), so the answer is the same at any
worker count.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from api.engine import METRIC_NAMES, EngineError, get_strategy, run_backtest
from api.engine.resampling import bootstrap_stats, resample_trades
from api.services.errors import ValidationFailed
from api.services.results import candles_of, crypto_header, bars_per_year_of, error_code

METHODS = ("trades", "bars")
PERCENTILES = (5, 25, 50, 75, 95)
MAX_PATHS = 10_000


def check_options(method: Any, paths: Any, block_bars: Any, seed: Any) -> dict[str, Any]:
    """The Monte Carlo options checked (ValidationFailed naming each bad one)."""
    errors = []
    if method not in METHODS:
        errors.append({"field": "method", "message": f"must be one of {', '.join(METHODS)}"})
    for name, value, lo, hi in (("paths", paths, 1, MAX_PATHS), ("block_bars", block_bars, 1, 1_000_000),
                                ("seed", seed, 0, 2**63 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            errors.append({"field": name, "message": f"must be an integer from {lo} to {hi:,}"})
    if errors:
        raise ValidationFailed("invalid Monte Carlo options", errors)
    return {"method": method, "paths": paths, "block_bars": block_bars, "seed": seed}


def montecarlo_crypto(crypto: Mapping[str, Any], strategy_id: int, params: Mapping[str, Any], method: str,
                      paths: int, block_bars: int, seed: int, prices: Any) -> dict[str, Any]:
    """One crypto's Monte Carlo answer (or its error entry); never raises for the crypto's data."""
    header = crypto_header(crypto, prices)
    if len(prices) == 0:
        return {**header, "error": {"code": "no_data", "message": "no price data stored for this cryptocurrency"}}
    spec = get_strategy(strategy_id)
    per_year = bars_per_year_of(crypto.get("interval", "1d"))
    try:
        candles = candles_of(prices, crypto.get("interval", "1d"))
        original = run_backtest(spec, candles, params, per_year, with_trades=method == "trades")
        if method == "trades":
            closed = np.array([t.return_pct for t in original.trades if not t.is_open])
            final, drawdown = resample_trades(closed, seed, int(crypto["id"]), paths)
            distributions = {"total_return": final, "max_drawdown": drawdown}
        else:
            stats = bootstrap_stats(spec, candles, params, per_year, block_bars, seed, int(crypto["id"]), paths)
            distributions = {name: stats[:, METRIC_NAMES.index(name)]
                             for name in ("total_return", "max_drawdown", "sharpe_ratio")}
    except EngineError as exc:
        return {**header, "error": {"code": error_code(exc), "message": str(exc)}}
    returns = distributions["total_return"]
    base = original.metrics["total_return"]
    return {
        **header,
        "original": original.metrics,
        "paths": paths,
        "percentiles": {name: _percentiles(values) for name, values in distributions.items()},
        "probability_of_loss": _share(returns < 0.0),
        "original_percentile": None if base is None else _share(returns < base),
        "error": None,
    }


def _share(flags: np.ndarray) -> float:
    """% of the paths flagged, as count x 100 / paths (34.6, not 34.599999999999994)."""
    return float(np.count_nonzero(flags) * 100.0 / flags.size)


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    """p5 ... p95 over the paths that have a value (linear interpolation, numpy's default)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}


def montecarlo_error(crypto: Mapping[str, Any], code: str, message: str) -> dict[str, Any]:
    """A crypto's entry when it could not be run at all (a lost worker, a failed read)."""
    return {**crypto_header(crypto, None), "error": {"code": code, "message": message}}


def montecarlo_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Across the cryptos that ran: medians of their median return and of their probability of loss."""
    ok = [r for r in results if r["error"] is None]
    medians = [r["percentiles"]["total_return"]["p50"] for r in ok if r["percentiles"]["total_return"]["p50"]
               is not None]
    losses = [r["probability_of_loss"] for r in ok]
    return {
        "total_cryptos": len(results), "successful": len(ok), "failed": len(results) - len(ok),
        "median_of_median_returns": float(np.median(medians)) if medians else None,
        "median_probability_of_loss": float(np.median(losses)) if losses else None,
        "cryptos_with_loss_probability_over_50": sum(1 for x in losses if x > 50.0),
    }
