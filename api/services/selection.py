"""What a request tests: which cryptos (`symbols`) and which span of their candles (`start`, `end`).

`start` and `end` are ISO 8601 dates or datetimes, taken as UTC when they
carry no offset. The span is inclusive: a date as `end` means the whole of that
day. A run sees only the candles inside the span, so indicators warm up
inside it and every metric (buy-and-hold and CAGR included) covers just it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from api.db.repository import PriceSeries
from api.services.results import iso_utc
from api.services.errors import NotFound, ValidationFailed

MAX_SYMBOLS = 10_000
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"  # what an import accepts, and so what a symbol can be
SYMBOL_RE = re.compile(SYMBOL_PATTERN)


@dataclass(frozen=True)
class Selection:
    """Cryptos by symbol (None = every crypto with data) and a span in epoch seconds (None = unbounded)."""

    symbols: tuple[str, ...] | None = None
    start: int | None = None
    end: int | None = None

    @property
    def has_span(self) -> bool:
        return self.start is not None or self.end is not None

    def describe(self) -> dict[str, Any]:
        """The selection as the summary reports it."""
        return {"symbols": list(self.symbols) if self.symbols is not None else None,
                "start": _iso(self.start), "end": _iso(self.end)}

    def span_only(self) -> Selection:
        """The same span, every crypto (what a single backtest takes of a selection)."""
        return Selection(None, self.start, self.end)


ALL = Selection()


def parse_selection(symbols: Any = None, start: Any = None, end: Any = None) -> Selection:
    """A Selection from request values; ValidationFailed naming `symbols`, `start` or `end`."""
    errors: list[dict[str, str]] = []
    chosen = None
    if symbols is not None:
        if not isinstance(symbols, Sequence) or isinstance(symbols, (str, bytes)) or not symbols \
                or not all(isinstance(s, str) and s.strip() for s in symbols):
            errors.append({"field": "symbols", "message": "must be a non-empty list of symbols"})
        elif len(symbols) > MAX_SYMBOLS:
            errors.append({"field": "symbols", "message": f"at most {MAX_SYMBOLS} symbols"})
        else:
            chosen = tuple(dict.fromkeys(s.strip().upper() for s in symbols))
    begin = _instant(start, "start", errors, end_of_day=False)
    finish = _instant(end, "end", errors, end_of_day=True)
    if begin is not None and finish is not None and begin > finish:
        errors.append({"field": "start", "message": f"must not be after end ({_iso(finish)})"})
    if errors:
        raise ValidationFailed("invalid selection of cryptos or candles", errors)
    return Selection(chosen, begin, finish)


def known_symbol_shape(symbol: Any, field: str = "symbol") -> str:
    """`symbol` if it has a symbol's shape (what an import accepts), else ValidationFailed naming `field`.

    Checked before any query: a NUL byte, for one, is a driver error, not a 404.
    """
    if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol):
        raise ValidationFailed(f"{field} must be 1-32 characters of A-Z a-z 0-9 . _ - starting with a letter or "
                               "digit", [{"field": field, "message": "not a symbol: 1-32 characters of A-Z a-z 0-9 "
                                                                    ". _ - starting with a letter or digit"}])
    return symbol


def span_of(crypto: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(start, end) as a task's crypto dict carries them to the worker (None, None: every candle)."""
    return crypto.get("span_start"), crypto.get("span_end")


def choose(cryptos: list[dict[str, Any]], selection: Selection) -> list[dict[str, Any]]:
    """The cryptos the selection names (in id order), each carrying the span; NotFound naming unknown symbols."""
    if selection.symbols is not None:
        by_symbol = {c["symbol"].upper(): c for c in cryptos}
        unknown = [s for s in selection.symbols if s not in by_symbol]
        if unknown:
            listed = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
            raise NotFound(f"no cryptocurrency with price data for {listed}",
                           [{"field": "symbols", "message": f"unknown or without price data: {listed}"}])
        wanted = set(selection.symbols)
        cryptos = [c for c in cryptos if c["symbol"].upper() in wanted]
    if selection.has_span:
        cryptos = [{**c, "span_start": selection.start, "span_end": selection.end} for c in cryptos]
    return cryptos


def within_span(prices: PriceSeries, start: int | None, end: int | None) -> PriceSeries:
    """The candles of `prices` with start <= time <= end (prices must hold `time`)."""
    if start is None and end is None:
        return prices
    times = prices.time
    lo = 0 if start is None else int(np.searchsorted(times, start, side="left"))
    hi = times.size if end is None else int(np.searchsorted(times, end, side="right"))
    fields = {name: None if getattr(prices, name) is None else np.ascontiguousarray(getattr(prices, name)[lo:hi])
              for name in ("time", "open", "high", "low", "close", "volume")}
    count = max(hi - lo, 0)
    return replace(prices, **fields, candle_count=count,
                   first_time=int(times[lo]) if count else None, last_time=int(times[hi - 1]) if count else None)


def _instant(value: Any, field: str, errors: list[dict[str, str]], end_of_day: bool) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append({"field": field, "message": "must be an ISO 8601 date or datetime, e.g. 2024-01-31 or "
                                                  "2024-01-31T12:00:00Z"})
        return None
    text = value.strip()
    try:
        if len(text) == 10:  # a date: the day's first second, or (for end) its last
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return int(moment.timestamp()) + (86_399 if end_of_day else 0)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        errors.append({"field": field, "message": f"not an ISO 8601 date or datetime: {text[:40]!r}"})
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() // 1)


def _iso(epoch: int | None) -> str | None:
    return None if epoch is None else iso_utc(epoch)

