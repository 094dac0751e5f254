"""Walk-forward analysis of one strategy (issue 12): does the setting a grid picks in hindsight hold out of sample?

Pure, no I/O: `walkforward_run` reads the candles and fans cryptos out. On each
crypto's own candles the windows of `engine.windows` are laid: train
[s, s + train), test [s + train, s + train + test), s moving on by the step.
In each window:

1. the grid runs on the train span alone (`train_crypto`, the numbers a /sweep
   with that span gives);
2. the best setting by `rank_by` is chosen: per crypto, or (`universe`) the one
   whose median over every crypto that has this window is best
   (`choose_per_crypto`, `choose_universe`); ties go to the earlier setting in
   grid order, a setting without a value for `rank_by` is never chosen;
3. that setting runs on the test span alone (`run_test_spans`), exactly as
   /backtest with start/end on that span (the indicators warm up inside it).

The test runs are chained into one out-of-sample account
(`engine.stitching.stitch`). The summary sets in-sample against
out-of-sample; its `decay_ratio` is the walk-forward efficiency: the median
out-of-sample return per day over the median in-sample return per day.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.db.repository import METRIC_COLUMNS, PriceSeries
from api.engine import EngineError, get_strategy, run_backtest
from api.engine.intervals import SECONDS_PER_INTERVAL
from api.engine.stitching import stitch
from api.engine.windows import DAY, TooManyWindows, Window, walk_forward_windows
from api.services.errors import ValidationFailed
from api.services.results import (CryptoSettings, bars_per_year_of, candles_of, crypto_header, crypto_settings,
                                  error_code, iso_utc)
from api.services.selection import within_span

SELECTS = ("per_crypto", "universe")
# the metrics a window's best setting may be chosen by, and whether more is better
RANK_METRICS: dict[str, bool] = {
    "sharpe_ratio": True, "total_return": True, "sortino_ratio": True, "calmar_ratio": True, "cagr": True,
    "profit_factor": True, "sqn": True, "win_rate": True, "avg_trade_return": True, "max_drawdown": False}
MAX_DAYS = 36_500
MIN_DAYS = 1 / 1_440  # one minute: a window's spans are laid in whole seconds


@dataclass(frozen=True)
class WalkForwardOptions:
    """The checked options of a walk-forward request."""

    train_days: float
    test_days: float
    step_days: float | None
    anchored: bool
    rank_by: str
    select: str

    def windows(self, first_time: int, last_time: int, interval: str) -> list[Window]:
        """The windows on a span from its first candle's open time to its last one's; none when a train or
        test span would be shorter than one candle (it could hold one candle at most)."""
        seconds = SECONDS_PER_INTERVAL.get(interval, DAY)
        if min(self.train_days, self.test_days) * DAY < seconds:
            return []
        return walk_forward_windows(first_time, last_time, seconds, self.train_days, self.test_days, self.step_days,
                                    self.anchored)

    def describe(self) -> dict[str, Any]:
        return {"train_days": self.train_days, "test_days": self.test_days,
                "step_days": self.test_days if self.step_days is None else self.step_days,
                "anchored": self.anchored, "rank_by": self.rank_by, "select": self.select}


def check_options(train_days: Any, test_days: Any, step_days: Any = None, anchored: Any = False,
                  rank_by: Any = "sharpe_ratio", select: Any = "per_crypto") -> WalkForwardOptions:
    """The options checked (ValidationFailed naming each bad one).

    step_days may not be shorter than test_days: test spans that overlap could
    not be chained into one out-of-sample account.
    """
    errors = []
    for name, value in (("train_days", train_days), ("test_days", test_days), ("step_days", step_days)):
        if value is None and name == "step_days":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_DAYS <= value <= MAX_DAYS:
            errors.append({"field": name, "message": f"must be a number of days from {MIN_DAYS:.6g} (a minute) to "
                                                    f"{MAX_DAYS:,}"})
    if not errors and step_days is not None and step_days < test_days:
        errors.append({"field": "step_days", "message": f"must be at least test_days ({test_days}): test spans that "
                                                        "overlap cannot be chained into one account"})
    if not isinstance(anchored, bool):
        errors.append({"field": "anchored", "message": "must be true or false"})
    if rank_by not in RANK_METRICS:
        errors.append({"field": "rank_by", "message": f"must be one of {', '.join(RANK_METRICS)}"})
    if select not in SELECTS:
        errors.append({"field": "select", "message": f"must be one of {', '.join(SELECTS)}"})
    if errors:
        raise ValidationFailed("invalid walk-forward options", errors)
    return WalkForwardOptions(float(train_days), float(test_days), None if step_days is None else float(step_days),
                              anchored, rank_by, select)


# ---- 1. the grid on each train span (in a worker) ----------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TrainedCrypto:
    """One crypto's windows and, per window, the grid's numbers on its train span; or the crypto's error."""

    header: dict[str, Any]
    windows: tuple[Window, ...]
    train: tuple[CryptoSettings, ...]
    error: dict[str, str] | None


def train_crypto(crypto: Mapping[str, Any], strategy_id: int, sets: Sequence[Mapping[str, Any]],
                 options: WalkForwardOptions, prices: PriceSeries) -> TrainedCrypto:
    """Lay the windows on the crypto's candles (inside its span) and run the grid on each train span."""
    header = crypto_header(crypto, prices)
    if len(prices) == 0:
        return TrainedCrypto(header, (), (), {"code": "no_data", "message": "no price data stored for this "
                                                                            "cryptocurrency"})
    try:
        windows = tuple(options.windows(prices.first_time, prices.last_time, crypto.get("interval", "1d")))
    except TooManyWindows as exc:
        return TrainedCrypto(header, (), (), {"code": "too_many_windows", "message": str(exc)})
    if not windows:
        seconds = SECONDS_PER_INTERVAL.get(crypto.get("interval", "1d"), DAY)
        days = (prices.last_time - prices.first_time + seconds) / DAY
        if min(options.train_days, options.test_days) * DAY < seconds:
            message = (f"train_days and test_days must each cover one candle at least "
                       f"({seconds / DAY:g} days at {crypto.get('interval', '1d')})")
        else:
            message = (f"{days:g} days of candles; one window needs train_days + test_days = "
                       f"{options.train_days + options.test_days:g} days")
        return TrainedCrypto(header, (), (), {"code": "insufficient_data", "message": message})
    train = tuple(crypto_settings(crypto, strategy_id, sets, _span(prices, w.train_start, w.train_end),
                                  time.perf_counter()) for w in windows)
    return TrainedCrypto(header, windows, train, None)


def lost_training(crypto: Mapping[str, Any], code: str, message: str) -> TrainedCrypto:
    """A crypto whose training could not run at all (a lost worker, a failed read)."""
    return TrainedCrypto(crypto_header(crypto, None), (), (), {"code": code, "message": message})


def _span(prices: PriceSeries, start: int, end: int) -> PriceSeries:
    """The candles of [start, end)."""
    return within_span(prices, start, end - 1)


# ---- 2. the choice --------------------------------------------------------------------------------------------------

def _scores(rows: CryptoSettings, rank_by: str) -> np.ndarray:
    """Each setting's rank_by value, signed so that more is better; NaN where it has none."""
    column = rows.stats[:, METRIC_COLUMNS.index(rank_by)].copy()
    if rows.crypto_error is not None:
        column[:] = np.nan
    for i in rows.errors:
        column[i] = np.nan
    return column if RANK_METRICS[rank_by] else -column


def _best(scores: np.ndarray) -> int | None:
    """The first setting with the highest score, None when none has one."""
    if not np.isfinite(scores).any():
        return None
    return int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))


def choose_per_crypto(trained: TrainedCrypto, rank_by: str) -> list[int | None]:
    """Per window of this crypto, the index of its best setting on the train span (None: none ranked)."""
    return [_best(_scores(rows, rank_by)) for rows in trained.train]


def choose_universe(trained: Sequence[TrainedCrypto], rank_by: str) -> list[dict[str, Any]]:
    """Per window index, the setting with the best median score over every crypto that has that window.

    [{"window": k, "setting": i | None, "median": the signed-back median of rank_by, "cryptos": how many}]
    """
    by_window: dict[int, list[np.ndarray]] = {}
    for t in trained:
        for w, rows in zip(t.windows, t.train):
            by_window.setdefault(w.index, []).append(_scores(rows, rank_by))
    out = []
    for k in sorted(by_window):
        with warnings.catch_warnings():  # a setting no crypto could rank has an all-NaN column: its median is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(np.vstack(by_window[k]), axis=0)
        best = _best(medians)
        value = None if best is None else float(medians[best] if RANK_METRICS[rank_by] else -medians[best])
        out.append({"window": k, "setting": best, "median": value, "cryptos": len(by_window[k])})
    return out


# ---- 3. the chosen settings on each test span (in a worker) ---------------------------------------------------------

def run_test_spans(crypto: Mapping[str, Any], strategy_id: int, windows: Sequence[Window],
                chosen: Sequence[Mapping[str, Any] | None], prices: PriceSeries,
                equity_curve: bool = True) -> dict[str, Any]:
    """Each window's chosen setting on its test span alone, and the test runs chained into one account.

    {"windows": [{"metrics", "candles", "error"} per window], "out_of_sample": the chained metrics | None,
     "equity_curve": [{"time", "equity"}] of the chained account (when asked)}
    """
    spec = get_strategy(strategy_id)
    interval = crypto.get("interval", "1d")
    per_year = bars_per_year_of(interval)
    entries, runs = [], []
    for window, params in zip(windows, chosen):
        span = _span(prices, window.test_start, window.test_end)
        if params is None:
            entries.append({"metrics": None, "candles": len(span), "error": None})
            continue
        try:
            candles = candles_of(span, interval)
            outcome = run_backtest(spec, candles, params, per_year, with_trades=False)
        except EngineError as exc:
            entries.append({"metrics": None, "candles": len(span), "error": {"code": error_code(exc),
                                                                             "message": str(exc)}})
            continue
        entries.append({"metrics": outcome.metrics, "candles": len(span), "error": None})
        runs.append((candles, outcome))
    answer: dict[str, Any] = {"windows": entries, "out_of_sample": None}
    if equity_curve:
        answer["equity_curve"] = []
    if runs:
        times, equity, metrics = stitch(runs, per_year)
        answer["out_of_sample"] = metrics
        if equity_curve:
            answer["equity_curve"] = [{"time": iso_utc(t), "equity": e}
                                      for t, e in zip(times.tolist(), equity.tolist())]
    return answer


# ---- the answer -------------------------------------------------------------------------------------------------------

def window_entry(window: Window, rows: CryptoSettings, setting: int | None, params: Mapping[str, Any] | None,
                 tested: Mapping[str, Any], rank_by: str) -> dict[str, Any]:
    """One window of one crypto as the answer gives it: spans, the chosen setting, in- and out-of-sample metrics."""
    if setting is None:
        error = rows.crypto_error or {"code": "no_ranked_setting",
                                      "message": f"no setting of the grid has a {rank_by} on this train span"}
    else:
        error = tested["error"]
    return {
        "window": window.index,
        "train_start": iso_utc(window.train_start), "train_end": iso_utc(window.train_end),
        "test_start": iso_utc(window.test_start), "test_end": iso_utc(window.test_end),
        "train_candles": rows.header["candles"], "test_candles": tested["candles"],
        "parameters": None if params is None else dict(params),
        "in_sample": None if setting is None else _metrics(rows, setting),
        "out_of_sample": tested["metrics"],
        "error": error,
    }


def _metrics(rows: CryptoSettings, i: int) -> dict[str, Any]:
    result = rows.result(i)
    return {k: result[k] for k in METRIC_COLUMNS}


def walkforward_summary(results: Sequence[Mapping[str, Any]], options: WalkForwardOptions) -> dict[str, Any]:
    """In-sample against out-of-sample over every (crypto, window) that ran both, and the chained accounts."""
    ok = [r for r in results if r["error"] is None]
    pairs = [w for r in ok for w in r["windows"] if w["error"] is None and w["out_of_sample"] is not None]
    is_returns = [w["in_sample"]["total_return"] for w in pairs]
    oos_returns = [w["out_of_sample"]["total_return"] for w in pairs]
    stitched = [r["out_of_sample"]["total_return"] for r in ok if r["out_of_sample"] is not None]
    is_median, oos_median = _median(is_returns), _median(oos_returns)
    decay = None
    if is_median is not None and oos_median is not None and is_median > 0.0:
        decay = (oos_median / options.test_days) / (is_median / options.train_days)
    return {
        "total_cryptos": len(results), "successful": len(ok), "failed": len(results) - len(ok),
        "windows": sum(len(r["windows"]) for r in ok), "windows_tested": len(pairs),
        "in_sample": {"median_return": is_median,
                      "median_sharpe": _median([w["in_sample"]["sharpe_ratio"] for w in pairs])},
        "out_of_sample": {"median_return": oos_median,
                          "median_sharpe": _median([w["out_of_sample"]["sharpe_ratio"] for w in pairs]),
                          "profitable_windows": None if not pairs else
                          sum(1 for x in oos_returns if x > 0.0) * 100.0 / len(pairs),
                          "median_chained_return": _median(stitched)},
        "decay_ratio": decay,
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None
