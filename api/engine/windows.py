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


MAX_WINDOWS = 1_000  # per crypto: beyond this, the windows are too short for the history to mean anything


class TooManyWindows(ValueError):
    """The options would lay more than MAX_WINDOWS windows on one history."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count:,} windows; at most {MAX_WINDOWS:,}")
        self.count = count


def walk_forward_windows(first_time: int, last_time: int, interval_seconds: int, train_days: float,
                         test_days: float, step_days: float | None = None, anchored: bool = False) -> list[Window]:
    """Every window that fits between the first candle and the last one's close (none if even one does not).

    ValueError unless train_days, test_days and step_days (when given) are at
    least one second; TooManyWindows beyond MAX_WINDOWS (counted before any is made).
    """
    train, test = round(train_days * DAY), round(test_days * DAY)
    step = test if step_days is None else round(step_days * DAY)
    for name, value in (("train_days", train), ("test_days", test), ("step_days", step)):
        if not value >= 1:
            raise ValueError(f"{name} must be at least one second")
    end_of_data = int(last_time) + int(interval_seconds)
    room = end_of_data - int(first_time) - train - test
    count = 0 if room < 0 else room // step + 1
    if count > MAX_WINDOWS:
        raise TooManyWindows(count)
    out: list[Window] = []
    for k in range(count):
        s = int(first_time) + k * step
        out.append(Window(k, int(first_time) if anchored else s, s + train, s + train, s + train + test))
    return out
