"""The answer of a grid sweep: every setting's aggregate over the cryptos, the best settings with their rows,
and each crypto's best setting (a sweep's full answer would list every row of every setting).

Aggregates of a setting, over its successful cryptos: `median_return` and
`mean_return` (% total return), `beat_buy_and_hold` (% of cryptos whose return
beat their buy-and-hold return), `mean_sharpe` (over those with a Sharpe ratio),
`worst_drawdown` (% the largest max_drawdown), `successful`. Settings are ranked
by `rank_by` (one of RANKINGS: higher first, except worst_drawdown, lower first;
settings without a value last).
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from api.services.errors import ValidationFailed

RANKINGS = ("median_return", "mean_return", "beat_buy_and_hold", "mean_sharpe", "worst_drawdown")
LOWER_IS_BETTER = frozenset({"worst_drawdown"})
MAX_TOP = 100


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


def aggregate(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A setting's aggregate over its cryptos (None where no crypto gives a value)."""
    ok = [r for r in results if r["error"] is None and r["total_return"] is not None]
    returns = [r["total_return"] for r in ok]
    beating = [r for r in ok if r["buy_and_hold_return"] is not None]
    sharpes = [r["sharpe_ratio"] for r in ok if r["sharpe_ratio"] is not None]
    drawdowns = [r["max_drawdown"] for r in ok if r["max_drawdown"] is not None]
    return {
        "median_return": statistics.median(returns) if returns else None,
        "mean_return": statistics.fmean(returns) if returns else None,
        "beat_buy_and_hold": (sum(r["total_return"] > r["buy_and_hold_return"] for r in beating) / len(beating)
                              * 100.0) if beating else None,
        "mean_sharpe": statistics.fmean(sharpes) if sharpes else None,
        "worst_drawdown": max(drawdowns) if drawdowns else None,
        "successful": len(ok),
    }


def grid_answer(settings: Sequence[Mapping[str, Any]], rank_by: str, top: int,
                summary: Mapping[str, Any]) -> dict[str, Any]:
    """The grid's answer from every setting ({parameters, results ranked}) and the sweep's summary."""
    rows = [{"parameters": s["parameters"], "aggregate": aggregate(s["results"]), "results": s["results"]}
            for s in settings]
    sign = 1.0 if rank_by in LOWER_IS_BETTER else -1.0
    rows.sort(key=lambda s: (s["aggregate"][rank_by] is None, sign * (s["aggregate"][rank_by] or 0.0),
                             orjson.dumps(s["parameters"], option=orjson.OPT_SORT_KEYS)))  # ties: a fixed order
    best: dict[int, dict[str, Any]] = {}
    for setting in rows:
        for r in setting["results"]:
            if r["error"] is None and r["total_return"] is not None:
                held = best.get(r["crypto_id"])
                if held is None or r["total_return"] > held["total_return"]:
                    best[r["crypto_id"]] = {"crypto_id": r["crypto_id"], "symbol": r["symbol"],
                                            "parameters": setting["parameters"], "total_return": r["total_return"],
                                            "buy_and_hold_return": r["buy_and_hold_return"]}
    return {
        "settings": [{"parameters": s["parameters"], "aggregate": s["aggregate"]} for s in rows],
        "top": [dict(s) for s in rows[:top]],
        "best_per_crypto": sorted(best.values(), key=lambda b: -b["total_return"]),
        "summary": {**summary, "rank_by": rank_by, "top": top,
                    "best_parameters": rows[0]["parameters"] if rows else None,
                    "best_aggregate": rows[0]["aggregate"] if rows else None},
    }
