"""Small helpers the strategy functions share: warm-up checks, single runs as one row, crossings of series."""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from numba import njit

from ..errors import InsufficientDataError
from ..numeric import CACHE


def require(candles: int, needed: int, what: str) -> None:
    """InsufficientDataError unless there are enough candles for a single signal value."""
    if candles < needed:
        raise InsufficientDataError(f"{what} needs at least {needed} candles, got {candles}")


def one_row(signal_rows: Any, candles: Any, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A strategy's single-run signals as its `signal_rows` with one setting (one rule, two callers)."""
    entry = np.empty((1, len(candles)), dtype=np.bool_)
    exit_ = np.empty((1, len(candles)), dtype=np.bool_)
    error = signal_rows(candles, [params], entry, exit_)[0]
    if error is not None:
        raise error
    return entry[0], exit_[0]


def fill_crossings(series: dict[Hashable, np.ndarray], pairs: list[tuple[int, Hashable, Hashable]],
                   entry: np.ndarray, exit_: np.ndarray) -> None:
    """For each (row, a, b): entry[row] = series[a] crosses above series[b], exit_[row] = crosses below.

    Above: a[t] > b[t] and a[t-1] <= b[t-1]; below: a[t] < b[t] and a[t-1] >= b[t-1]; False at t = 0 and
    wherever either value is still warming up (NaN). All rows in one compiled call.
    """
    if not pairs:
        return
    keys = list(series)
    index = {k: i for i, k in enumerate(keys)}
    table = np.stack([series[k] for k in keys])
    _crossings_rows(table, np.array([p[0] for p in pairs], dtype=np.int64),
                    np.array([index[p[1]] for p in pairs], dtype=np.int64),
                    np.array([index[p[2]] for p in pairs], dtype=np.int64), entry, exit_)


@njit(cache=CACHE, nogil=True)
def _crossings_rows(table, rows, a_rows, b_rows, entry, exit_):
    n = table.shape[1]
    for r in range(rows.size):
        j, ia, ib = rows[r], a_rows[r], b_rows[r]
        entry[j, 0] = False
        exit_[j, 0] = False
        for t in range(1, n):
            a, b, pa, pb = table[ia, t], table[ib, t], table[ia, t - 1], table[ib, t - 1]
            entry[j, t] = (a > b) and (pa <= pb)
            exit_[j, t] = (a < b) and (pa >= pb)
