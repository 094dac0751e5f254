"""Row checks for candle frames, vectorized: what is wrong with which line, and the candle interval.

Each bad row is reported once, for its first problem, with its line in the
file, the column, the value and the reason; the report keeps the first
MAX_REPORTED of them by line, and counts every one by reason.

Dates have one format per file (DATE_FORMATS), decided once for the whole
date column: ISO 8601, epoch numbers, or day-month-year dates that are
either all dd/mm/yy(yy) or all mm/dd/yy(yy). No cell is ever guessed at by
itself: a cell that does not fit the file's format is a rejected row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from api.engine.intervals import SECONDS_PER_INTERVAL, missing_candles
from api.services.candle_files import PRICE_COLUMNS, ImportRejected, NotTyped

MAX_REPORTED = 1000
MAX_GAPS = 5  # the largest gaps in a crypto's series that a report lists

#: date_format values a caller may give (None or "auto": decided from the file)
#: the report's date_format is one of these keys too: how the file was read
DATE_FORMATS = {"iso": "ISO 8601", "epoch": "epoch s/ms/us", "dmy": "dd/mm/yyyy or dd/mm/yy",
                "mdy": "mm/dd/yyyy or mm/dd/yy"}
DAY_MONTH = ("dmy", "mdy")
FORMAT_SAMPLE = 10_000  # non-empty date cells that tell day-month-year, epoch and ISO 8601 columns apart


@dataclass
class ImportReport:
    """What happened to one file: counts, the interval found, and the rejected rows."""

    symbol: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    rows_unchanged: int = 0  # of rows_stored: candles already stored with the very same values
    interval: str | None = None
    date_format: str | None = None  # how the dates were read: a DATE_FORMATS key
    missing_candles: int = 0  # in the crypto's whole stored series after the import, at its interval
    largest_gaps: list[dict[str, Any]] = field(default_factory=list)  # {after, before, missing}, largest first
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class CandleValidator:
    """Row checks for a file read in batches, in file order; finish() tells the interval.

    Every row is judged by itself (date, numbers, high/low, volume) except
    duplicates, which are looked up across all earlier batches (cheaply when
    the file is sorted: a batch that starts after everything seen cannot
    repeat a time). The report keeps the first MAX_REPORTED bad rows by line.
    """

    def __init__(self, report: ImportReport, blank_lines: Callable[[], np.ndarray] | None = None,
                 date_format: str | None = None, streamed: bool = False) -> None:
        """date_format: a checked DATE_FORMATS key, or None to decide it from the first frame.

        streamed: the frames are blocks of a longer file. Day-month-year dates
        are then refused with NotTyped, so the file is read again as one frame:
        dd/mm against mm/dd is decided on the whole date column.
        """
        self.report = report
        self._requested = date_format
        self._streamed = streamed
        self.date_format: str | None = None  # the file's, once the first frame is seen
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
        fmt = self._file_date_format(frame)
        times = _parse_times(frame["time"], fmt)
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

        reject(~dated & _fits_another_format(frame["time"], ~dated, fmt), "time",
               f"date not in the file's format ({DATE_FORMATS[fmt]})")
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

    def _file_date_format(self, frame: pd.DataFrame) -> str:
        """The file's date format, decided on the first frame (the whole file unless streamed)."""
        if self.date_format is None:
            if self._streamed and (self._requested in DAY_MONTH
                                   or (self._requested is None and _looks_day_month(frame["time"]))):
                raise NotTyped  # dd/mm or mm/dd is told by the whole column, not by its first block
            self.date_format = decide_date_format(frame["time"], self._requested,
                                                  frame.attrs.get("time_column", "time"))
            self.report.date_format = self.date_format
        return self.date_format

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


def check_fits_series(symbol: str, held: str, first_time: int | None, interval: str, seconds: np.ndarray) -> None:
    """A file for a crypto that has candles must continue its series: the same interval, on the same time grid.

    Candles at other times of day (12:00 in a series at 00:00) would be
    stored between the stored ones, and the series would no longer be one
    interval apart. The file's own times are regular already (interval_of),
    so all of them are off the grid by the same amount, or none is.
    """
    if held != interval:
        raise ImportRejected(f"{symbol} holds {held} candles; this file has {interval}")
    if first_time is None or seconds.size == 0:
        return
    off = int((seconds[0] - first_time) % SECONDS_PER_INTERVAL[interval])
    if off:
        raise ImportRejected(f"{symbol} holds {interval} candles at {_iso(np.int64(first_time))} plus whole "
                             f"{interval} steps; this file's are {off} s off that grid (e.g. {_iso(seconds[0])}), "
                             "so nothing was stored")


def report_gaps(report: ImportReport, times: np.ndarray) -> None:
    """Fill the report's missing_candles and largest_gaps from a series' sorted candle times (epoch s).

    Gaps are information, not an error: a file with holes is stored, and says
    where the holes are (the candle before and after each, and how many
    candles of the interval fit between them).
    """
    step = SECONDS_PER_INTERVAL[report.interval]
    missing = np.diff(times) // step - 1
    holes = np.flatnonzero(missing > 0)
    largest = holes[np.argsort(-missing[holes], kind="stable")[:MAX_GAPS]]
    report.missing_candles = missing_candles(int(times[0]), int(times[-1]), len(times), report.interval) or 0
    report.largest_gaps = [{"after": _iso(times[i]), "before": _iso(times[i + 1]), "missing": int(missing[i])}
                           for i in largest]


def _iso(seconds: np.int64) -> str:
    """Epoch seconds as an ISO 8601 UTC time, as the API writes times (2024-01-02T00:00:00Z)."""
    return f"{np.datetime64(int(seconds), 's')}Z"


def _numbers(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    return pd.to_numeric(column.str.strip(), errors="coerce")


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """UTC datetimes as int64 epoch seconds."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)


_EPOCH_TEXT = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z; beyond it a number is not a candle time
# ISO 8601 as Arrow's typed reader takes it, so a file reads the same on the typed and the text path:
# YYYY-MM-DD, then optionally [T ]hh[:mm[:ss[.f]]] and Z or +-hh[[:]mm]
_ISO_TEXT = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
# day, month (either order), a four- or two-digit year with one separator (/ - .), then an optional time
_DAY_MONTH_TEXT = (r"(?P<first>\d{1,2})(?P<sep>[/.-])(?P<second>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
                   r"(?:[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second_of_minute>\d{2}))?)?")


def check_date_format(value: str | None) -> str | None:
    """A caller's date_format as a DATE_FORMATS key, None to decide per file; ImportRejected naming date_format."""
    key = (value or "").strip().lower()
    if key in ("", "auto"):
        return None
    if key not in DATE_FORMATS:
        raise ImportRejected(f"date_format {str(value)[:40]!r} is not one of auto, {', '.join(DATE_FORMATS)}",
                             field="date_format")
    return key


def decide_date_format(raw: pd.Series, requested: str | None = None, column: str = "time") -> str:
    """The format of a whole date column: the requested one, else decided once from its cells.

    Typed times are ISO 8601 and numbers epoch. Text is day-month-year when
    most of its first FORMAT_SAMPLE cells are (the order then decided by
    _day_month_order), epoch when most are numbers, else ISO 8601: one
    format for the column, so a cell in any other is a rejected row.
    """
    if requested is not None:
        return requested
    if pd.api.types.is_datetime64_any_dtype(raw):
        return "iso"
    if pd.api.types.is_numeric_dtype(raw):
        return "epoch"
    sample = _sample(raw)
    if _mostly(sample, _DAY_MONTH_TEXT):
        return _day_month_order(raw, column)
    return "epoch" if _mostly(sample, _EPOCH_TEXT) else "iso"


def _day_month_order(raw: pd.Series, column: str) -> str:
    """dmy when more rows have a first field over 12 than a second one, mdy for the reverse.

    A column where nothing tells them apart is refused (ImportRejected naming
    date_format): the order is never guessed.
    """
    text = _text(raw)
    parts = _day_month_parts(text)
    first, second = parts["first"], parts["second"]
    only_dmy, only_mdy = int(((first > 12) & (second <= 12)).sum()), int(((second > 12) & (first <= 12)).sum())
    if only_dmy == only_mdy:
        example = text[first.notna()].iloc[0]
        why = ("every date fits both" if only_dmy == 0 else
               f"{only_dmy} dates fit only day first and as many only month first")
        raise ImportRejected(f"the dates of column {column!r} are ambiguous: read as dd/mm/yy(yy) or as "
                             f"mm/dd/yy(yy), {why} (e.g. {example!r}); say which with date_format=dmy or "
                             "date_format=mdy", field="date_format")
    return "dmy" if only_dmy > only_mdy else "mdy"


def _looks_day_month(raw: pd.Series) -> bool:
    """Most of the column's first non-empty text cells are day-month-year dates (typed columns never are)."""
    if pd.api.types.is_datetime64_any_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
        return False
    return _mostly(_sample(raw), _DAY_MONTH_TEXT)


def _sample(raw: pd.Series) -> pd.Series:
    """The column's first FORMAT_SAMPLE non-empty cells, as stripped text: what its format is decided on."""
    text = _text(raw.iloc[:4 * FORMAT_SAMPLE])
    return text[text.notna() & (text != "")].iloc[:FORMAT_SAMPLE]


def _mostly(sample: pd.Series, pattern: str) -> bool:
    """More than half of the sample's cells are this pattern, whole."""
    return len(sample) > 0 and int(sample.str.fullmatch(pattern).sum()) * 2 > len(sample)


def _text(raw: pd.Series) -> pd.Series:
    return raw.astype(str).str.strip()


def _day_month_parts(text: pd.Series) -> pd.DataFrame:
    """The numeric fields of day-month-year cells (NaN where a cell is not one), years with their century.

    A two-digit year gets it as strptime's %y does: 69-99 are 19xx, 00-68 20xx.
    """
    parts = text.str.extract(f"^{_DAY_MONTH_TEXT}$")
    short = (parts["year"].str.len() == 2).to_numpy(dtype=bool, na_value=False)
    fields = parts.drop(columns="sep").apply(pd.to_numeric)
    fields["year"] += np.where(short, np.where(fields["year"] >= 69, 1900, 2000), 0)
    return fields


def _day_month_times(text: pd.Series, fmt: str) -> pd.Series:
    """Day-month-year cells as UTC datetimes, the day first (dmy) or the month first (mdy); NaT for others."""
    p = _day_month_parts(text)
    day, month = (p["first"], p["second"]) if fmt == "dmy" else (p["second"], p["first"])
    clock = p[["hour", "minute", "second_of_minute"]].fillna(0)
    ok = (clock["hour"] <= 23) & (clock["minute"] <= 59) & (clock["second_of_minute"] <= 59)
    fields = pd.DataFrame({"year": p["year"], "month": month, "day": day, "hour": clock["hour"],
                           "minute": clock["minute"], "second": clock["second_of_minute"]}).where(ok)
    return pd.to_datetime(fields, errors="coerce", utc=True)


def _no_times(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NaT, index=index, dtype="datetime64[s, UTC]")


def _parse_times(raw: pd.Series, fmt: str) -> pd.Series:
    """A date column as UTC datetimes in the file's format `fmt` (a DATE_FORMATS key); NaT where a cell does not fit.

    Typed times (Parquet, Arrow) count as ISO 8601 and numbers as epoch (s, ms
    or us, told apart by size). Text cells are matched against the format's
    pattern first (one vectorized match), so pandas never infers a cell's
    format by itself: '2021/01/02' or '01 Jan 2021' is no ISO 8601 date.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):  # typed timestamps (Parquet): naive ones are UTC
        if fmt != "iso":
            return _no_times(raw.index)
        return raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(raw):
        return _epoch_to_utc(raw.astype("float64")) if fmt == "epoch" else _no_times(raw.index)
    text = _text(raw)
    if fmt in DAY_MONTH:
        return _day_month_times(text, fmt)
    if fmt == "epoch":
        return _epoch_to_utc(pd.to_numeric(text.where(_fullmatch(text, _EPOCH_TEXT)), errors="coerce"))
    return pd.to_datetime(text.where(_fullmatch(text, _ISO_TEXT)), utc=True, errors="coerce", format="ISO8601")


def _fullmatch(text: pd.Series, pattern: str) -> pd.Series:
    """Which cells are the pattern, whole (False for missing cells)."""
    return text.str.fullmatch(pattern).fillna(False).astype(bool)


def _fits_another_format(raw: pd.Series, undated: np.ndarray, fmt: str) -> np.ndarray:
    """Which of the undated cells are dates in some other format (a mismatch, not garbage)."""
    fits = np.zeros(len(raw), dtype=bool)
    if not undated.any():
        return fits
    cells = raw[undated]
    other = np.zeros(len(cells), dtype=bool)
    for candidate in DATE_FORMATS:
        if candidate != fmt:
            other |= _parse_times(cells, candidate).notna().to_numpy()
    fits[np.flatnonzero(undated)[other]] = True
    return fits


def _epoch_to_utc(values: pd.Series) -> pd.Series:
    """Epoch numbers as UTC datetimes: >= 1e14 is microseconds, >= 1e11 milliseconds, else seconds."""
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    seconds = v * np.where(v >= 1e14, 1e-6, np.where(v >= 1e11, 1e-3, 1.0))
    ok = np.isfinite(seconds) & (np.abs(seconds) <= _MAX_EPOCH_SECONDS)
    whole = np.where(ok, np.round(seconds), 0).astype("int64").astype("datetime64[s]")
    out = pd.Series(pd.to_datetime(whole, utc=True), index=values.index)
    return out.where(ok)
