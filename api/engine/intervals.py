"""Candle intervals and how many bars make a year, for annualising ratios.

Crypto trades around the clock, so a year is 365 days of bars.
"""
from __future__ import annotations

SECONDS_PER_INTERVAL: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
    "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
    "1d": 86400, "3d": 259200, "1w": 604800,
}


def bars_per_year(interval: str) -> float:
    """Bars in a 365-day year for `interval` (e.g. 365 for "1d", 8760 for "1h")."""
    try:
        return 365 * 86400 / SECONDS_PER_INTERVAL[interval]
    except KeyError:
        raise ValueError(f"unknown candle interval {interval!r}; known: {', '.join(SECONDS_PER_INTERVAL)}") from None


def missing_candles(first_time: int, last_time: int, candles: int, interval: str) -> int | None:
    """Candles missing between the first and the last one (epoch seconds): the span's slots minus those stored.

    Cheap enough for every row of a listing (no scan of the candles); None
    for an interval this module does not know.
    """
    step = SECONDS_PER_INTERVAL.get(interval)
    if step is None or candles == 0:
        return None
    return max(0, (last_time - first_time) // step + 1 - candles)
