"""Walk-forward windows on one crypto's candles (issue 12): pure time arithmetic, in epoch seconds.

Window k trains on [s, s + train) and tests on [s + train, s + train + test),
then s moves on by `step` (default: the test length, so test spans tile the
history); `anchored` keeps every train span starting at the first candle
(growing train spans). s starts at the first candle's open time. A window fits
when its test span ends no later than the last candle's close
(last open time + one interval): every candle of the span is there. Spans
are half open; as a request's inclusive [start, end] a span [a, b) is
[a, b - 1 second].
"""
from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400


@dataclass(frozen=True)
class Window:
    """One walk-forward window: train [train_start, train_end), test [test_start, test_end), epoch seconds."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def walk_forward_windows(first_time: int, last_time: int, interval_seconds: int, train_days: float,
                         test_days: float, step_days: float | None = None, anchored: bool = False) -> list[Window]:
    """Every window that fits between the first candle and the last one's close (none if even one does not).

    ValueError unless train_days, test_days and step_days (when given) are positive.
    """
    for name, value in (("train_days", train_days), ("test_days", test_days), ("step_days", step_days)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    train, test = round(train_days * DAY), round(test_days * DAY)
    step = test if step_days is None else round(step_days * DAY)
    end_of_data = int(last_time) + int(interval_seconds)
    out: list[Window] = []
    s = int(first_time)
    while s + train + test <= end_of_data:
        start = int(first_time) if anchored else s
        out.append(Window(len(out), start, s + train, s + train, s + train + test))
        s += step
    return out
