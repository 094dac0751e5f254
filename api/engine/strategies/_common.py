"""Small helpers the strategy functions share: warm-up checks and crosses."""
from __future__ import annotations

import numpy as np

from ..errors import InsufficientDataError


def require(candles: int, needed: int, what: str) -> None:
    """InsufficientDataError unless there are enough candles for a single signal value."""
    if candles < needed:
        raise InsufficientDataError(f"{what} needs at least {needed} candles, got {candles}")


def crosses_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a[t] > b[t] and a[t-1] <= b[t-1] (False where either value is still warming up, i.e. NaN)."""
    out = np.zeros(a.size, dtype=np.bool_)
    out[1:] = (a[1:] > b[1:]) & (a[:-1] <= b[:-1])
    return out


def crosses_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a[t] < b[t] and a[t-1] >= b[t-1] (False during warm-up)."""
    out = np.zeros(a.size, dtype=np.bool_)
    out[1:] = (a[1:] < b[1:]) & (a[:-1] >= b[:-1])
    return out
