"""Row checks for candle frames, vectorized: what is wrong with which line, and the candle interval.

Each bad row is reported once, for its first problem, with its line in the
file, the column, the value and the reason; the report keeps the first
MAX_REPORTED of them by line, and counts every one by reason.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from api.engine.intervals import SECONDS_PER_INTERVAL
from api.services.candle_files import PRICE_COLUMNS, ImportRejected

MAX_REPORTED = 1000


@dataclass
class ImportReport:
    """What happened to one file: counts, the interval found, and the rejected rows."""

    symbol: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    rows_unchanged: int = 0  # of rows_stored: candles already stored with the very same values
    interval: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class CandleValidator:
    """Row checks for a file read in batches, in file order; finish() tells the interval.

    Every row is judged by itself (date, numbers, high/low, volume) except
    duplicates, which are looked up across all earlier batches (cheaply when
    the file is sorted: a batch that starts after everything seen cannot
    repeat a time). The report keeps the first MAX_REPORTED bad rows by line.
    """

    def __init__(self, report: ImportReport, blank_lines: Callable[[], np.ndarray] | None = None) -> None:
        self.report = report
        self._next_row = 0
        # readers skip empty lines; finish() counts them back into the reported lines, asking
        # for them (a pass over the file) only when some row was rejected
        self._blank_lines = blank_lines
        self._seen: list[np.ndarray] = []  # sorted unique epoch seconds of each batch
        self._last_seen: int | None = None

    def feed(self, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The good rows of this batch: (epoch seconds, {column: float64 values})."""
        report = self.report
        n = len(frame)
        lines = np.arange(self._next_row, self._next_row + n) + 2  # as if the file had no empty line
        self._next_row += n
        times = _parse_times(frame["time"])
        dated = times.notna().to_numpy()
        seconds = np.zeros(n, dtype=np.int64)
        if dated.any():
            seconds[dated] = _epoch_seconds(times[dated])
        numbers = {c: _numbers(frame[c]) for c in (*PRICE_COLUMNS, "volume")}
        bad = np.zeros(n, dtype=bool)

        def reject(mask: np.ndarray, column: str, reason: str) -> None:
            nonlocal bad
            mask = np.asarray(mask, dtype=bool) & ~bad  # each row reported once, for its first problem
            if not mask.any():
                return
            report.rejected_by_reason[reason] = report.rejected_by_reason.get(reason, 0) + int(mask.sum())
            for i in np.flatnonzero(mask)[:MAX_REPORTED]:
                report.errors.append({"line": int(lines[i]), "column": column,
                                      "value": str(frame[column].iat[i])[:64], "reason": reason})
            bad |= mask

        reject(~dated, "time", "unparseable date")
        for c in (*PRICE_COLUMNS, "volume"):
            if not pd.api.types.is_numeric_dtype(frame[c]):
                reject(numbers[c].isna().to_numpy() & (frame[c].str.strip() != "").to_numpy(), c, "not a number")
            reject(numbers[c].isna().to_numpy(), c, "missing value")
        for c in PRICE_COLUMNS:
            reject(~(numbers[c] > 0).to_numpy() | ~np.isfinite(numbers[c].to_numpy()), c,
                   "price must be a positive finite number")
        o, h, lo, c = (numbers[k].to_numpy() for k in PRICE_COLUMNS)
        reject(h < np.maximum(o, c), "high", "high below max(open, close)")
        reject(lo > np.minimum(o, c), "low", "low above min(open, close)")
        reject(~(numbers["volume"] >= 0).to_numpy() | ~np.isfinite(numbers["volume"].to_numpy()), "volume",
               "volume must be zero or positive")
        reject(self._duplicates(seconds, dated), "time", "duplicate timestamp")
        report.errors.sort(key=lambda e: e["line"])
        del report.errors[MAX_REPORTED:]
        report.rows_read += n
        report.rows_rejected += int(bad.sum())
        good = ~bad
        return seconds[good], {k: numbers[k].to_numpy(dtype=np.float64)[good] for k in (*PRICE_COLUMNS, "volume")}

    def _count_empty_lines(self) -> None:
        """Move each reported line past the file's empty lines: row i is its (i + 2)-th non-empty line."""
        if not self.report.errors or self._blank_lines is None:
            return
        blanks = np.asarray(self._blank_lines(), dtype=np.int64)
        if blanks.size == 0:
            return
        marks = blanks - np.arange(len(blanks))
        k = np.array([e["line"] for e in self.report.errors], dtype=np.int64)
        for error, line in zip(self.report.errors, (k + np.searchsorted(marks, k, side="right")).tolist()):
            error["line"] = line

    def _duplicates(self, seconds: np.ndarray, dated: np.ndarray) -> np.ndarray:
        """Dated rows whose time came earlier in the file (in this batch or an earlier one)."""
        dup = np.zeros(len(seconds), dtype=bool)
        t = seconds[dated]
        if t.size == 0:
            return dup
        repeat = pd.Series(t).duplicated(keep="first").to_numpy()
        if self._last_seen is not None and t.min() <= self._last_seen:  # the file is not in time order
            earlier = np.sort(np.concatenate(self._seen))
            at = np.minimum(np.searchsorted(earlier, t), len(earlier) - 1)
            repeat = repeat | (earlier[at] == t)
        dup[np.flatnonzero(dated)[repeat]] = True
        unique = np.sort(t[~repeat])  # no repeats left: sorting is enough (np.unique's hashing is slower)
        self._seen.append(unique)
        self._last_seen = int(unique[-1]) if self._last_seen is None else max(self._last_seen, int(unique[-1]))
        return dup

    def finish(self) -> str:
        """The candle interval, judged on every dated row (rejected rows make no fake gaps)."""
        self._count_empty_lines()
        every = np.sort(np.concatenate(self._seen)) if self._seen else np.array([], dtype=np.int64)
        self.report.interval = interval_of(every)
        return self.report.interval


def detect_interval(times: pd.Series) -> str:
    """The candle interval, when every gap is a whole number of one known interval; else ImportRejected."""
    return interval_of(_epoch_seconds(times))


def interval_of(seconds: np.ndarray) -> str:
    """detect_interval for sorted unique epoch seconds."""
    if len(seconds) < 2:
        raise ImportRejected("at least two valid candles are needed to tell their interval")
    gaps = np.diff(seconds)
    step = int(np.min(gaps))
    name = next((k for k, v in SECONDS_PER_INTERVAL.items() if v == step), None)
    if name is None or np.any(gaps % step):
        raise ImportRejected(f"irregular candle spacing (smallest gap {step} s, "
                             f"{int(np.sum(gaps % step != 0)) if step else len(gaps)} gaps not a multiple of it); "
                             "the interval is not guessed")
    return name


def _numbers(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    return pd.to_numeric(column.str.strip(), errors="coerce")


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """UTC datetimes as int64 epoch seconds."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


_EPOCH_TEXT = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z; beyond it a number is not a candle time


def _parse_times(raw: pd.Series) -> pd.Series:
    """Dates, ISO timestamps or epoch numbers (s, ms or us, told apart by size) as UTC datetimes.

    Which cells are numbers is told by one vectorized pattern match, so a file
    of ISO dates never pays for a failed numeric parse of every cell.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):  # typed timestamps (Parquet): naive ones are UTC
        return raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(raw):
        return _epoch_to_utc(raw.astype("float64"))
    text = raw.astype(str).str.strip()
    is_num = text.str.fullmatch(_EPOCH_TEXT).fillna(False).astype(bool)
    if is_num.all():
        return _epoch_to_utc(pd.to_numeric(text, errors="coerce"))
    parsed = pd.to_datetime(text.where(~is_num), utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & ~is_num & text.notna() & (text != "")
    if retry.any():  # not ISO 8601: let pandas infer each remaining one
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    if is_num.any():
        parsed[is_num] = _epoch_to_utc(pd.to_numeric(text[is_num], errors="coerce"))
    return parsed


def _epoch_to_utc(values: pd.Series) -> pd.Series:
    """Epoch numbers as UTC datetimes: >= 1e14 is microseconds, >= 1e11 milliseconds, else seconds."""
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    seconds = v * np.where(v >= 1e14, 1e-6, np.where(v >= 1e11, 1e-3, 1.0))
    ok = np.isfinite(seconds) & (np.abs(seconds) <= _MAX_EPOCH_SECONDS)
    whole = np.where(ok, np.round(seconds), 0).astype("int64").astype("datetime64[s]")
    out = pd.Series(pd.to_datetime(whole, utc=True), index=values.index)
    return out.where(ok)
