"""Walk-forward windows on a hand-made calendar (issue 12)."""
from __future__ import annotations

import pytest

from api.engine.windows import DAY, MAX_WINDOWS, TooManyWindows, Window, walk_forward_windows

T0 = 1_640_995_200  # 2022-01-01 00:00 UTC


def days(w: Window) -> tuple[float, float, float, float]:
    return tuple((t - T0) / DAY for t in (w.train_start, w.train_end, w.test_start, w.test_end))


def test_rolling_windows_tile_the_test_spans() -> None:
    # 100 daily candles: days 0..99, the last one closing at day 100
    windows = walk_forward_windows(T0, T0 + 99 * DAY, DAY, train_days=30, test_days=10)
    assert [days(w) for w in windows] == [(s, s + 30, s + 30, s + 40) for s in range(0, 61, 10)]
    assert [w.index for w in windows] == list(range(7))


def test_a_step_shorter_than_the_test_overlaps_and_anchored_trains_from_the_start() -> None:
    rolling = walk_forward_windows(T0, T0 + 99 * DAY, DAY, 30, 20, step_days=5)
    assert days(rolling[0]) == (0, 30, 30, 50) and days(rolling[1]) == (5, 35, 35, 55) and days(rolling[-1])[3] <= 100
    assert len(rolling) == 11  # s = 0, 5, ..., 50
    anchored = walk_forward_windows(T0, T0 + 99 * DAY, DAY, 30, 20, step_days=5, anchored=True)
    assert [days(w)[0] for w in anchored] == [0] * 11
    assert [days(w)[1:] for w in anchored] == [days(w)[1:] for w in rolling]


def test_the_last_window_must_end_by_the_last_close() -> None:
    exact = walk_forward_windows(T0, T0 + 39 * DAY, DAY, 30, 10)  # 40 candles: one window exactly
    assert [days(w) for w in exact] == [(0, 30, 30, 40)]
    assert walk_forward_windows(T0, T0 + 38 * DAY, DAY, 30, 10) == []  # one day short: none
    hourly = walk_forward_windows(T0, T0 + 47 * 3600, 3600, 1, 1)  # 48 hourly candles = 2 days
    assert [days(w) for w in hourly] == [(0, 1, 1, 2)]


@pytest.mark.parametrize("kwargs", [{"train_days": 0, "test_days": 5}, {"train_days": 5, "test_days": -1},
                                    {"train_days": 5, "test_days": 5, "step_days": 0}])
def test_non_positive_lengths_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        walk_forward_windows(T0, T0 + 99 * DAY, DAY, **kwargs)


def test_lengths_under_a_second_are_refused_and_too_many_windows_are_counted_before_any_is_made() -> None:
    with pytest.raises(ValueError, match="test_days"):
        walk_forward_windows(T0, T0 + 99 * DAY, DAY, 30, 1e-9)  # rounds to 0 s: it would never move on
    with pytest.raises(TooManyWindows) as info:
        walk_forward_windows(T0, T0 + 10 * 365 * DAY, DAY, 1, 1)
    assert info.value.count == 3_650 > MAX_WINDOWS  # 3,651 candles: s = 0 .. 3,649 days
    assert len(walk_forward_windows(T0, T0 + 999 * DAY, DAY, 1, 1)) == 999  # 1,000 candles, under the cap
