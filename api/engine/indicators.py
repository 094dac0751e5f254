"""Technical indicators, matching TA-Lib so results agree with common tools."""

import numpy as np

from .errors import InsufficientDataError


def compute_rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI as TA-Lib computes it; NaN during the `period`-bar warm-up.

    The smoothing recursion is sequential, so it runs as a tight loop over
    Python floats (much faster than per-element numpy indexing); everything
    else is vectorized.
    """
    if isinstance(period, bool) or int(period) != period or period < 1:
        raise ValueError(f"RSI period must be a positive integer, got {period!r}")
    period = int(period)
    close = np.asarray(close, dtype=np.float64)
    n = close.size
    if close.ndim != 1:
        raise ValueError(f"RSI needs a 1-D price array, got shape {close.shape}")
    if n < period + 1:
        raise InsufficientDataError(
            f"RSI({period}) needs at least {period + 1} candles, got {n}"
        )

    diff = np.diff(close)
    gains = np.maximum(diff, 0.0)
    losses = np.maximum(-diff, 0.0)

    ag = float(gains[:period].sum()) / period
    al = float(losses[:period].sum()) / period
    ag_list = [ag]
    al_list = [al]
    p1 = period - 1
    for g, l in zip(gains[period:].tolist(), losses[period:].tolist()):
        ag = (ag * p1 + g) / period
        al = (al * p1 + l) / period
        ag_list.append(ag)
        al_list.append(al)
    avg_gain = np.array(ag_list)
    avg_loss = np.array(al_list)

    out = np.full(n, np.nan)
    total = avg_gain + avg_loss
    out[period:] = np.divide(
        100.0 * avg_gain, total, out=np.zeros_like(total), where=total != 0.0
    )
    return out
