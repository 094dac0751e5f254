"""Deterministic SYNTHETIC demo data: fake OHLCV candles, NOT market data.

Every series produced here is invented by a seeded random-number generator so
the service can be demonstrated, benchmarked and tested without shipping or
licensing real exchange data. Symbols (``SYN001`` ...) and names
(``Synthetic Coin 001 (demo data)``) make that obvious wherever they surface.

The generator aims for *plausible-looking* crypto behaviour (per-coin start
price, drift and volatility, fat-tailed shocks, bull / bear / sideways regimes,
wicks, volume spikes on big moves) so that backtests produce varied results;
it makes no claim to model any real asset.

Determinism: crypto ``i`` depends only on ``(seed, i, n_candles, interval,
end)`` through ``np.random.default_rng([seed, i, k])`` (PCG64 + standard
distributions), never on ``n_cryptos``, the clock, or Python's ``hash``, so the
same arguments give the same candles on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DemoCrypto",
    "INTERVAL_SECONDS",
    "generate_demo_cryptos",
    "iter_demo_cryptos",
]

#: Supported candle intervals and their length in seconds.
INTERVAL_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "4h": 14_400, "1d": 86_400}

_SECONDS_PER_DAY = 86_400

# Sane price bounds: keeps every value far from float under/overflow and from
# NUMERIC column limits, even for the wildest random walk.
_MIN_PRICE = 1e-8
_MAX_PRICE = 1e9

# Per-coin parameter ranges (daily units).
_LOG10_START_PRICE = (-4.0, math.log10(50_000.0))
_DAILY_VOL = (0.015, 0.08)  # log-uniform
_DAILY_DRIFT_SD = 0.0008  # base log-drift per day ~ N(0, sd)
_T_DOF = (3.0, 6.0)  # student-t degrees of freedom (fat tails)
_SHOCK_CLIP = 12.0  # standardized shocks beyond this are clipped
_LOG10_DAILY_QUOTE_VOLUME = (5.0, 10.0)  # traded value per day, in quote units

# Regimes: 0 = bull, 1 = bear, 2 = sideways. Drift is in units of the coin's
# daily vol per day; vol is a multiplier of the coin's base vol.
_REGIME_DRIFT = np.array([0.07, -0.07, 0.0])
_REGIME_VOL = np.array([1.0, 1.35, 0.6])
_REGIME_VOLUME = np.array([0.25, 0.1, -0.3])  # log volume offset
_REGIME_START_P = np.array([0.35, 0.30, 0.35])
# Semi-Markov chain: durations are drawn explicitly, so no self-transitions.
_REGIME_TRANSITION = np.array(
    [
        [0.0, 0.4, 0.6],  # bull -> bear / sideways
        [0.4, 0.0, 0.6],  # bear -> bull / sideways
        [0.5, 0.5, 0.0],  # sideways -> bull / bear
    ]
)
_REGIME_START_CDF = np.cumsum(_REGIME_START_P)
_REGIME_TRANSITION_CDF = np.cumsum(_REGIME_TRANSITION, axis=1)
# Last bucket catches everything, so float round-off in the sums never yields
# an out-of-range state for u close to 1.
_REGIME_START_CDF[-1] = np.inf
_REGIME_TRANSITION_CDF[:, -1] = np.inf
_REGIME_MEAN_DAYS = 200.0
_REGIME_MIN_DAYS = 14.0

# Independent sub-streams per crypto, so e.g. the variable number of regime
# draws never shifts the price shocks.
_STREAM_PARAMS, _STREAM_REGIMES, _STREAM_PATH = 0, 1, 2


@dataclass(frozen=True, eq=False)
class DemoCrypto:
    """One synthetic crypto's candles; arrays are read-only to keep it frozen.

    ``eq=False`` because element-wise array comparison has no single truth
    value; compare fields with ``np.array_equal`` instead.
    """

    symbol: str
    name: str
    times: np.ndarray  # datetime64[s], UTC candle open times, ascending
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def _candle_times(n_candles: int, step: int, end: str) -> np.ndarray:
    """Open times of the last ``n_candles`` complete candles ending at ``end``.

    A date ``"YYYY-MM-DD"`` means "through the end of that UTC day", so the
    last candle opens at 00:00 (1d), 20:00 (4h) or 23:00 (1h). A timestamp
    ``"YYYY-MM-DDTHH:MM[:SS]"`` (naive, UTC) means the last candle that has
    fully closed by then.
    """
    try:
        parsed = np.datetime64(end)
    except ValueError as exc:
        raise ValueError(f"end must be an ISO date or datetime, got {end!r}") from exc
    if np.isnat(parsed):
        raise ValueError(f"end must be an ISO date or datetime, got {end!r}")
    unit = np.datetime_data(parsed.dtype)[0]
    boundary = parsed.astype("datetime64[s]").astype(np.int64)
    if unit in ("Y", "M", "W", "D"):
        boundary += _SECONDS_PER_DAY
    last_open = (boundary // step) * step - step
    offsets = np.arange(n_candles - 1, -1, -1, dtype=np.int64) * step
    return (last_open - offsets).astype("datetime64[s]")


def _regime_path(rng: np.random.Generator, n_candles: int, candles_per_day: float) -> np.ndarray:
    """Regime index per candle from a semi-Markov chain (a few switches per series)."""
    mean_len = _REGIME_MEAN_DAYS * candles_per_day
    min_len = max(1, math.ceil(_REGIME_MIN_DAYS * candles_per_day))
    lengths: list[np.ndarray] = []
    total = 0
    batch = max(4, math.ceil(2 * n_candles / mean_len) + 2)
    while total < n_candles:
        draw = np.maximum(np.ceil(rng.exponential(mean_len, size=batch)), min_len).astype(np.int64)
        lengths.append(draw)
        total += int(draw.sum())
    seg_lengths = np.concatenate(lengths)
    n_segments = int(np.searchsorted(np.cumsum(seg_lengths), n_candles) + 1)
    seg_lengths = seg_lengths[:n_segments]

    # One uniform per segment; the state chain itself is a short Python loop
    # over segments (~10), not over candles.
    u = rng.random(n_segments)
    states = np.empty(n_segments, dtype=np.int64)
    states[0] = int(np.searchsorted(_REGIME_START_CDF, u[0], side="right"))
    for k in range(1, n_segments):
        cdf = _REGIME_TRANSITION_CDF[states[k - 1]]
        states[k] = int(np.searchsorted(cdf, u[k], side="right"))
    return np.repeat(states, seg_lengths)[:n_candles]


def _fold_log_price(log_price: np.ndarray) -> np.ndarray:
    """Reflect a log-price path off the price bounds instead of pinning it there.

    Plain clipping would leave a crashed coin as a flat line at the floor for
    months (zero volatility breaks indicators); reflection keeps it a live
    penny coin while guaranteeing ``_MIN_PRICE <= price <= _MAX_PRICE``.
    """
    lo, hi = math.log(_MIN_PRICE), math.log(_MAX_PRICE)
    width = hi - lo
    z = np.mod(log_price - lo, 2.0 * width)
    return lo + np.where(z <= width, z, 2.0 * width - z)


def _make_crypto(seed: int, index: int, times: np.ndarray, step: int) -> DemoCrypto:
    """Build crypto ``index`` (0-based) fully vectorized over its candles."""
    n = times.shape[0]
    step_days = step / _SECONDS_PER_DAY
    candles_per_day = 1.0 / step_days
    sqrt_step = math.sqrt(step_days)

    # Per-coin parameters: drawn first from their own stream, so they do not
    # depend on n_candles or interval.
    p = np.random.default_rng([seed, index, _STREAM_PARAMS])
    log_start = math.log(10.0) * p.uniform(*_LOG10_START_PRICE)
    daily_vol = math.exp(p.uniform(math.log(_DAILY_VOL[0]), math.log(_DAILY_VOL[1])))
    daily_drift = p.normal(0.0, _DAILY_DRIFT_SD)
    dof = p.uniform(*_T_DOF)
    log_quote_volume = math.log(10.0) * p.uniform(*_LOG10_DAILY_QUOTE_VOLUME)
    wick_scale = p.uniform(0.35, 0.8)
    gap_scale = p.uniform(0.01, 0.05)

    regimes = _regime_path(
        np.random.default_rng([seed, index, _STREAM_REGIMES]), n, candles_per_day
    )

    r = np.random.default_rng([seed, index, _STREAM_PATH])
    shocks = r.standard_t(dof, size=n) / math.sqrt(dof / (dof - 2.0))  # unit variance
    shocks = np.clip(shocks, -_SHOCK_CLIP, _SHOCK_CLIP)
    gaps = r.standard_normal(n)
    wick_up = np.abs(r.standard_normal(n))
    wick_down = np.abs(r.standard_normal(n))
    volume_noise = r.standard_normal(n)

    vol = daily_vol * _REGIME_VOL[regimes] * sqrt_step  # per-candle vol
    drift = (daily_drift + _REGIME_DRIFT[regimes] * daily_vol) * step_days
    body = drift + vol * shocks  # open -> close log return
    gap = gap_scale * vol * gaps  # previous close -> open log gap

    raw_close = log_start + np.cumsum(gap + body)
    log_close = _fold_log_price(raw_close)
    log_open = _fold_log_price(raw_close - body)

    open_ = np.exp(log_open)
    close = np.exp(log_close)
    high = np.maximum(open_, close) * np.exp(wick_scale * vol * wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_scale * vol * wick_down)
    # Clipping all four alike is monotone, so high >= max(o, c) and
    # low <= min(o, c) survive it (and exp() round-off at the bounds is absorbed).
    for arr in (open_, high, low, close):
        np.clip(arr, _MIN_PRICE, _MAX_PRICE, out=arr)

    # Volume in base units = traded value / price; bigger on big moves.
    log_mid = 0.5 * (log_open + log_close)
    log_volume = (
        log_quote_volume
        + math.log(step_days)
        - log_mid
        + _REGIME_VOLUME[regimes]
        + 0.45 * volume_noise
        + 0.35 * np.abs(shocks)
    )
    volume = np.exp(log_volume)

    for arr in (open_, high, low, close, volume):
        arr.setflags(write=False)
    number = f"{index + 1:03d}"
    return DemoCrypto(
        symbol=f"SYN{number}",
        name=f"Synthetic Coin {number} (demo data)",
        times=times,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )


def iter_demo_cryptos(
    n_cryptos: int = 211,
    n_candles: int = 1828,
    seed: int = 42,
    interval: str = "1d",
    end: str = "2025-12-31",
) -> Iterator[DemoCrypto]:
    """Yield synthetic cryptos one at a time so huge hourly sets never sit in memory."""
    if interval not in INTERVAL_SECONDS:
        raise ValueError(f"interval must be one of {sorted(INTERVAL_SECONDS)}, got {interval!r}")
    if n_cryptos < 0:
        raise ValueError("n_cryptos must be >= 0")
    if n_candles < 1:
        raise ValueError("n_candles must be >= 1")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    step = INTERVAL_SECONDS[interval]
    times = _candle_times(n_candles, step, end)
    times.setflags(write=False)
    for i in range(n_cryptos):
        # Shared read-only time axis: identical for every crypto, saves memory.
        yield _make_crypto(seed, i, times, step)


def generate_demo_cryptos(
    n_cryptos: int = 211,
    n_candles: int = 1828,
    seed: int = 42,
    interval: str = "1d",
    end: str = "2025-12-31",
) -> list[DemoCrypto]:
    """Return all synthetic cryptos at once; fine for daily data, use the iterator for hourly."""
    return list(iter_demo_cryptos(n_cryptos, n_candles, seed, interval, end))
