"""The answer of a grid sweep: every setting's aggregate over the cryptos, the best settings with their rows,
and each crypto's best setting, computed on the grid's numbers (a dict per backtest only for the rows shown).

Aggregates of a setting, over its successful cryptos (no error, a total
return): `median_return` and `mean_return` (% total return),
`beat_buy_and_hold` (% of cryptos whose return beat their buy-and-hold return),
`mean_sharpe` (over those with a Sharpe ratio), `worst_drawdown` (% the largest
max_drawdown), `successful`. Settings are ranked by `rank_by` (one of
RANKINGS: higher first, except worst_drawdown, lower first; settings without a
value last; ties in the order of their parameters' JSON).
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from api.db.repository import METRIC_COLUMNS
from api.services.errors import ValidationFailed
from api.services.results import RETRYABLE_ERRORS, CryptoSettings, rank_results

RANKINGS = ("median_return", "mean_return", "beat_buy_and_hold", "mean_sharpe", "worst_drawdown")
LOWER_IS_BETTER = frozenset({"worst_drawdown"})
MAX_TOP = 100
_COLUMN = {name: i for i, name in enumerate(METRIC_COLUMNS)}


def check_ranking(rank_by: Any, top: Any) -> tuple[str, int]:
    """(rank_by, top) or ValidationFailed naming the field."""
    errors = []
    if rank_by not in RANKINGS:
        errors.append({"field": "rank_by", "message": f"must be one of {', '.join(RANKINGS)}"})
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        errors.append({"field": "top", "message": f"must be an integer from 1 to {MAX_TOP}"})
    if errors:
        raise ValidationFailed("invalid ranking of the grid", errors)
    return rank_by, top


def failed_mask(cryptos: Sequence[CryptoSettings], settings: int) -> np.ndarray:
    """cryptos x settings: True where that backtest has an error."""
    failed = np.zeros((len(cryptos), settings), dtype=bool)
    for c, rows in enumerate(cryptos):
        if rows.crypto_error is not None:
            failed[c, :] = True
        for i in rows.errors:
            failed[c, i] = True
    return failed


def aggregates(metric: np.ndarray, failed: np.ndarray) -> list[dict[str, Any]]:
    """Every setting's aggregate from metric (cryptos x settings x METRIC_COLUMNS, NaN = null) and the failures."""
    ret = metric[:, :, _COLUMN["total_return"]]
    ok = ~failed & np.isfinite(ret)
    returns = np.where(ok, ret, np.nan)
    hold = metric[:, :, _COLUMN["buy_and_hold_return"]]
    with_hold = ok & np.isfinite(hold)
    sharpe = np.where(ok, metric[:, :, _COLUMN["sharpe_ratio"]], np.nan)
    drawdown = np.where(ok, metric[:, :, _COLUMN["max_drawdown"]], np.nan)
    with warnings.catch_warnings():  # a setting where no crypto gives a value: NaN, reported as null
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(returns, axis=0)
        mean = np.nanmean(returns, axis=0)
        beat = (with_hold & (ret > hold)).sum(axis=0) / with_hold.sum(axis=0) * 100.0
        mean_sharpe = np.nanmean(sharpe, axis=0)
        worst = np.nanmax(drawdown, axis=0)
    columns = [_nulls(median), _nulls(mean), _nulls(beat), _nulls(mean_sharpe), _nulls(worst), ok.sum(axis=0).tolist()]
    names = (*RANKINGS, "successful")
    return [dict(zip(names, values)) for values in zip(*columns)]


def _nulls(values: np.ndarray) -> list[float | None]:
    return [v if v - v == 0.0 else None for v in values.tolist()]


def grid_answer(cryptos: Sequence[CryptoSettings], parameter_sets: Sequence[Mapping[str, Any]], rank_by: str,
                top: int, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The grid's answer from each crypto's numbers (in crypto order) and the sweep's summary."""
    k = len(parameter_sets)
    width = len(METRIC_COLUMNS)
    metric = np.stack([c.stats for c in cryptos]) if cryptos else np.empty((0, k, width))
    failed = failed_mask(cryptos, k)
    rows = aggregates(metric, failed)
    sign = 1.0 if rank_by in LOWER_IS_BETTER else -1.0
    order = sorted(range(k), key=lambda i: (rows[i][rank_by] is None, sign * (rows[i][rank_by] or 0.0),
                                            orjson.dumps(parameter_sets[i], option=orjson.OPT_SORT_KEYS)))
    ranked = [{"parameters": parameter_sets[i], "aggregate": rows[i]} for i in order]
    top_rows = [{**ranked[j], "results": rank_results([c.result(i) for c in cryptos])}
                for j, i in enumerate(order[:top])]
    best = _best_per_crypto(cryptos, metric, failed, order, parameter_sets)
    retryable = sum(k if c.crypto_error is not None and c.crypto_error["code"] in RETRYABLE_ERRORS else
                    sum(1 for e in c.errors.values() if e["code"] in RETRYABLE_ERRORS) for c in cryptos)
    successful = int((~failed).sum())
    return {
        "settings": ranked,
        "top": top_rows,
        "best_per_crypto": best,
        "summary": {**summary, "successful": successful, "failed": len(cryptos) * k - successful,
                    "retryable": retryable, "rank_by": rank_by, "top": top,
                    "best_parameters": ranked[0]["parameters"] if ranked else None,
                    "best_aggregate": ranked[0]["aggregate"] if ranked else None},
    }


def _best_per_crypto(cryptos: Sequence[CryptoSettings], metric: np.ndarray, failed: np.ndarray, order: list[int],
                     parameter_sets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each crypto's best setting by total return (a tie goes to the better-ranked setting), best first."""
    if not cryptos or not order:
        return []
    ret = metric[:, order, _COLUMN["total_return"]]
    ret = np.where(~failed[:, order] & np.isfinite(ret), ret, -np.inf)
    pick = np.argmax(ret, axis=1)  # the first maximum: the better-ranked setting
    best = []
    for c, rows in enumerate(cryptos):
        j = int(pick[c])
        if ret[c, j] == -np.inf:
            continue
        i = order[j]
        hold = float(metric[c, i, _COLUMN["buy_and_hold_return"]])
        best.append({"crypto_id": rows.header["crypto_id"], "symbol": rows.header["symbol"],
                     "parameters": parameter_sets[i], "total_return": float(ret[c, j]),
                     "buy_and_hold_return": hold if hold - hold == 0.0 else None})
    return sorted(best, key=lambda b: -b["total_return"])
