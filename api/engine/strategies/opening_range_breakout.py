"""6. Opening range breakout: enter on the first close above the session's opening range, exit below it or at the session's end.

Sessions are the UTC windows [start, start + session_hours) that begin at
`session_start_hour` every day. The range is the highest high and lowest low
of the bars whose open time lies in the session's first `range_minutes`; it
is known only once those bars are over, so no bar of the range itself gives a
signal. The session's last bar is the one whose open time plus the candle
interval reaches the session's end (a day whose last bar is missing has none).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..candles import Candles
from ..errors import InsufficientDataError
from ..parameters import ParameterSpec
from ..registry import StrategySpec, fmt
from ._common import require

DAY = 86_400


def signals(candles: Candles, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    start = int(params["session_start_hour"]) * 3600
    range_seconds = int(params["range_minutes"]) * 60
    session_seconds = int(params["session_hours"]) * 3600
    if candles.interval_seconds >= range_seconds:
        raise InsufficientDataError(
            f"opening range breakout with a {range_seconds // 60}-minute range needs candles shorter than "
            f"that; these are {candles.interval_seconds // 60}-minute candles")
    require(len(candles), 2, "opening range breakout")
    time = candles.time
    day = (time - start) // DAY
    offset = time - start - day * DAY  # seconds since this day's session start, in [0, DAY)
    in_session = offset < session_seconds
    in_range = in_session & (offset < range_seconds)
    after_range = in_session & ~in_range
    session = day - day[0]
    sessions = int(session[-1]) + 1
    high = np.full(sessions, -np.inf)
    low = np.full(sessions, np.inf)
    np.maximum.at(high, session[in_range], candles.high[in_range])
    np.minimum.at(low, session[in_range], candles.low[in_range])
    has_range = np.isfinite(high)[session]
    after_range &= has_range
    last_bar = in_session & (offset + candles.interval_seconds >= session_seconds)
    if not (after_range.any() or last_bar.any()):
        raise InsufficientDataError("opening range breakout: no candle after a complete opening range and no "
                                    "session's last candle, so not a single signal value")

    breakout = np.flatnonzero(after_range & ~last_bar & (candles.close > high[session]))
    first = breakout[np.r_[True, session[breakout][1:] != session[breakout][:-1]]] if breakout.size else breakout
    entry = np.zeros(len(candles), dtype=np.bool_)
    entry[first] = True
    exit_ = (after_range & (candles.close < low[session])) | last_bar
    return entry, exit_


def check(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    minutes, hours = params.get("range_minutes"), params.get("session_hours")
    if isinstance(minutes, int) and isinstance(hours, int) and not minutes < hours * 60:
        return [("range_minutes", f"must be shorter than the session (session_hours {fmt(hours)} = "
                                  f"{hours * 60} minutes), got {fmt(minutes)}")]
    return []


SPEC = StrategySpec(
    id=6, code="opening_range_breakout", name="Opening range breakout",
    description="Long only, intraday candles: enter on the first close of the session above the high of its "
                "opening range (the bars of its first range_minutes), at most once per session and never on "
                "its last bar; exit on a close below the range's low or at the session's last bar.",
    own_parameters=(
        ParameterSpec("session_start_hour", "integer", 0, 0, 23, description="UTC hour each session starts."),
        ParameterSpec("range_minutes", "integer", 60, 1, 1440,
                      description="Length of the opening range in minutes (candles must be shorter)."),
        ParameterSpec("session_hours", "integer", 24, 1, 24, description="Length of each session in hours."),
    ),
    signals=signals,
    inputs=frozenset({"time", "high", "low", "close"}),
    check=check,
)
