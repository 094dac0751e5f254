"""Read a candle file, validate every row (vectorized), and store the good rows with COPY.

Formats so far: CSV with a header (`date|timestamp|open_time, open, high,
low, close, volume`, any case), Binance's kline CSV (12 columns, no header,
open time in ms or us), Parquet (same columns; read with a pyarrow that no
longer deserializes arbitrary extension types, CVE-2023-47248) and Excel .xlsx
(first sheet or a named one; read-only through defusedxml, the archive's
uncompressed size capped before anything is parsed, formulas read as text
and so rejected as "not a number", never evaluated). Every rejected row is reported
with its line number in the file, the column, the value and the reason; the
good rows of a file are upserted (crypto + time) in one transaction, so a
re-import updates candles and never duplicates them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from api.db import repository as repo
from api.engine.intervals import SECONDS_PER_INTERVAL
from api.services.errors import ServiceError

TIME_COLUMNS = ("date", "timestamp", "open_time")
PRICE_COLUMNS = ("open", "high", "low", "close")
SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
MAX_REPORTED = 1000


BINANCE_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                         "trades", "taker_base_volume", "taker_quote_volume", "ignore")


class ImportRejected(ServiceError):
    """The file as a whole cannot be imported (not a table, wrong columns, empty, irregular spacing...)."""

    def __init__(self, detail: str, field: str = "file") -> None:
        super().__init__(detail, [{"field": field, "message": detail}])


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


def symbol_from_path(path: Path) -> str:
    """BTCUSDT.csv -> BTCUSDT (validated like any symbol)."""
    return check_symbol(path.stem.split("-")[0].split("_")[0])


def check_symbol(symbol: str) -> str:
    """A symbol is letters, digits and . _ - (at most 32), starting with a letter or digit."""
    if not SYMBOL_RE.match(symbol or ""):
        raise ImportRejected(f"symbol {str(symbol)[:40]!r} must be 1-32 characters of A-Z a-z 0-9 . _ - "
                             "starting with a letter or digit", field="symbol")
    return symbol.upper()


def read_csv_candles(source: Path | BinaryIO, typed: bool = True) -> pd.DataFrame:
    """The file's table with lower-cased column names (numbers typed when every cell is one).

    A headerless file of 12 columns whose first cell is a number is read as
    Binance's kline layout. typed=False reads every cell as text, so each bad
    one can be reported.
    """
    try:
        kline = _is_kline(source)
        frame = _read_typed_table(source, kline) if typed else None
        if frame is None:
            _rewind(source)
            frame = _read_table(source, kline)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImportRejected(f"not a readable CSV table: {exc}") from None
    return _candle_columns(frame)


class _NotTyped(Exception):
    """Arrow's typed reader cannot take this file: read it again cell by cell."""


CSV_BLOCK_BYTES = 8 << 20


def _typed_csv_batches(source: Path | BinaryIO) -> Iterator[pd.DataFrame]:
    """Candle frames of ~4 MB blocks from Arrow's streaming CSV reader; _NotTyped when a cell is not.

    Types are inferred from the first block; a later cell that does not fit
    (a word in a price column, a malformed date) raises _NotTyped.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    kline = _is_kline(source)
    _rewind(source)
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES,
                             column_names=list(BINANCE_KLINE_COLUMNS) if kline else None)
    try:
        reader = pacsv.open_csv(source, read_options=read,
                                convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
        usable = _typed_schema_usable(reader.schema)
    except (pa.ArrowException, OSError, ValueError):  # UnicodeDecodeError too: bytes that are not UTF-8
        raise _NotTyped from None
    if not usable:
        raise _NotTyped
    _check_columns([str(n).strip().lower() for n in reader.schema.names])
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError):
            raise _NotTyped from None
        if batch.num_rows:
            yield _candle_columns(pa.Table.from_batches([batch]).to_pandas(date_as_object=False))


def _is_kline(source: Path | BinaryIO) -> bool:
    head = _first_line(source)
    _rewind(source)
    cells = head.split(",")
    return len(cells) == len(BINANCE_KLINE_COLUMNS) and cells[0].strip().isdigit()


class CandleValidator:
    """Row checks for a file read in batches, in file order; finish() tells the interval.

    Every row is judged by itself (date, numbers, high/low, volume) except
    duplicates, which are looked up across all earlier batches (cheaply when
    the file is sorted: a batch that starts after everything seen cannot
    repeat a time). The report keeps the first MAX_REPORTED bad rows by line.
    """

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self._next_line = 2  # line 1 is the header
        self._seen: list[np.ndarray] = []  # sorted unique epoch seconds of each batch
        self._last_seen: int | None = None

    def feed(self, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The good rows of this batch: (epoch seconds, {column: float64 values})."""
        report = self.report
        n = len(frame)
        lines = np.arange(self._next_line, self._next_line + n)
        self._next_line += n
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
        every = np.sort(np.concatenate(self._seen)) if self._seen else np.array([], dtype=np.int64)
        self.report.interval = interval_of(every)
        return self.report.interval


def validate_candles(frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """A whole file's good rows (UTC times, in time order); every other row goes into the report."""
    checks = CandleValidator(report)
    seconds, values = checks.feed(frame)
    checks.finish()
    clean = pd.DataFrame({"time": pd.to_datetime(seconds, unit="s", utc=True), **values})
    return clean.sort_values("time", kind="stable").reset_index(drop=True)


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


def import_csv(engine: Engine, path: Path, symbol: str | None = None) -> ImportReport:
    """Validate one candle file (CSV, Parquet or .xlsx, by extension) and upsert its good rows."""
    return import_candles(engine, path, path.name, symbol)


def import_candles(engine: Engine, source: Path | BinaryIO, filename: str, symbol: str | None = None,
                   sheet: str | None = None) -> ImportReport:
    """Validate one candle file (a path or an open binary file) and upsert its good rows in one transaction.

    A CSV is read and checked in blocks while PostgreSQL stores the blocks
    before it, so the two share the machine's cores; a file that fails as a
    whole, even at its last row, rolls back and stores nothing.
    """
    symbol = check_symbol(symbol) if symbol else symbol_from_path(Path(filename or ""))
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".txt", "", ".parquet", ".pq", ".xlsx"):
        raise ImportRejected(f"unsupported file type {suffix!r}: send CSV (.csv), Parquet (.parquet) or .xlsx")
    with engine.begin() as conn:
        existing = repo.find_crypto(conn, symbol=symbol)
        # a new crypto's interval is known only at the end of the file; a failed file rolls this back
        crypto_id = existing["id"] if existing else repo.insert_cryptocurrency(conn, symbol, symbol, "1d")
        if suffix in (".parquet", ".pq"):
            report = _store(conn, symbol, crypto_id, existing, [read_parquet_candles(source)])
        elif suffix == ".xlsx":
            report = _store(conn, symbol, crypto_id, existing, [read_xlsx_candles(source, sheet)])
        else:
            try:
                with conn.begin_nested():  # the typed reader may meet a bad cell late: undo its rows
                    report = _store(conn, symbol, crypto_id, existing, _typed_csv_batches(source))
            except _NotTyped:
                _rewind(source)
                report = _store(conn, symbol, crypto_id, existing, [read_csv_candles(source, typed=False)])
        if existing is not None and existing["interval"] != report.interval:
            raise ImportRejected(f"{symbol} holds {existing['interval']} candles; this file has {report.interval}")
        if existing is None:
            repo.set_crypto_interval(conn, crypto_id, report.interval)
    return report


def _store(conn: Any, symbol: str, crypto_id: int, existing: dict[str, Any] | None,
           frames: Iterable[pd.DataFrame]) -> ImportReport:
    """Check each frame's rows and COPY the good ones as they come; the report of the whole file."""
    report = ImportReport(symbol=symbol)
    checks = CandleValidator(report)
    with repo.price_sink(conn, crypto_id, upsert=existing is not None) as sink:
        for frame in frames:
            seconds, values = checks.feed(frame)
            sink.write(seconds, *(values[k] for k in (*PRICE_COLUMNS, "volume")))
        if report.rows_read == 0:
            raise ImportRejected("the file has a header but no rows")
        checks.finish()
        if sink.rows_sent == 0:
            raise ImportRejected(f"no valid rows ({report.rows_rejected} rejected: {report.rejected_by_reason})")
    report.rows_stored = sink.rows_sent
    report.rows_unchanged = sink.rows_sent - sink.rows_written
    return report


def read_parquet_candles(source: Path | BinaryIO) -> pd.DataFrame:
    """A Parquet file's candle columns (names matched as for CSV)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(source)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ImportRejected(f"not a readable Parquet file: {str(exc)[:200]}") from None
    return _candle_columns(table.to_pandas())


MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024


def read_xlsx_candles(source: Path | BinaryIO, sheet: str | None = None) -> pd.DataFrame:
    """The first (or the named) sheet of an .xlsx file, every cell as text; guarded against bombs."""
    import zipfile

    import openpyxl

    try:
        with zipfile.ZipFile(source) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
        if unpacked > MAX_XLSX_UNCOMPRESSED:
            raise ImportRejected(f"the .xlsx unpacks to {unpacked / 2**20:.0f} MB, over the "
                                 f"{MAX_XLSX_UNCOMPRESSED / 2**20:.0f} MB limit (a zip bomb?)")
        _rewind(source)
        book = openpyxl.load_workbook(source, read_only=True, data_only=False)
    except ImportRejected:
        raise
    except Exception as exc:  # zipfile, openpyxl and defusedxml raise many kinds for a bad file
        root = exc.__cause__ or exc  # e.g. defusedxml's EntitiesForbidden inside openpyxl's ValueError
        raise ImportRejected(f"not a readable .xlsx workbook: {type(root).__name__}: {str(root)[:200]}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportRejected(f"no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})", field="sheet")
        rows = book[sheet].iter_rows(values_only=True) if sheet else book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ImportRejected("the sheet is empty")
        cells = [["" if v is None else str(v) for v in row] for row in rows]
    finally:
        book.close()
    return _candle_columns(pd.DataFrame(cells, columns=[str(h) for h in header], dtype=str))


def _candle_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-cased names, the time column found and renamed, only the six candle columns kept."""
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    time_col = _check_columns(list(frame.columns))
    if frame.empty:
        raise ImportRejected("the file has a header but no rows")
    return frame.rename(columns={time_col: "time"})[["time", *PRICE_COLUMNS, "volume"]]


def _check_columns(names: list[str]) -> str:
    """The name of the time column; ImportRejected naming what is missing."""
    time_col = next((c for c in TIME_COLUMNS if c in names), None)
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in names]
    if time_col is None or missing:
        wanted = "one of date/timestamp/open_time" if time_col is None else ", ".join(missing)
        raise ImportRejected(f"missing columns: {wanted} (found: {', '.join(names) or 'none'})")
    return time_col


def _read_typed_table(source: Path | BinaryIO, kline: bool) -> pd.DataFrame | None:
    """The whole file through Arrow's multithreaded reader, or None when a cell is not typed."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(column_names=list(BINANCE_KLINE_COLUMNS) if kline else None)
    try:
        table = pacsv.read_csv(source, read_options=read,
                               convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
        usable = _typed_schema_usable(table.schema)
    except (pa.ArrowException, OSError, ValueError):  # UnicodeDecodeError too: bytes that are not UTF-8
        return None
    return table.to_pandas(date_as_object=False) if usable else None


def _typed_schema_usable(schema: Any) -> bool:
    """Every price and volume column numeric, the time column a time, a number or text; names unique.

    Only empty cells count as missing (null_values=[""]), as in the text
    reader, so both paths judge a cell the same way.
    """
    import pyarrow as pa

    names = [str(n).strip().lower() for n in schema.names]
    if len(set(names)) != len(names):
        return False
    for name, kind in zip(names, schema.types):
        if name in (*PRICE_COLUMNS, "volume") and not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            return False
        if name in TIME_COLUMNS and not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)
                                         or pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                         or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return False
    return True


def _read_table(source: Path | BinaryIO, kline: bool) -> pd.DataFrame:
    """Numbers parsed by the C reader when every cell is one (the common, fast case); else all as text.

    A text column is checked cell by cell later, so a file with bad cells is
    slower but reports every one of them.
    """
    options: dict[str, Any] = {"header": None, "names": BINANCE_KLINE_COLUMNS} if kline else {}
    try:
        head = pd.read_csv(source, nrows=0, **options)
        numeric = {c: "float64" for c in head.columns if str(c).strip().lower() in (*PRICE_COLUMNS, "volume")}
        _rewind(source)
        return pd.read_csv(source, dtype={**{c: str for c in head.columns}, **numeric}, keep_default_na=False,
                           na_values=[""], **options)
    except ValueError:
        _rewind(source)
        return pd.read_csv(source, dtype=str, keep_default_na=False, **options)


def _rewind(source: Path | BinaryIO) -> None:
    if not isinstance(source, Path):
        source.seek(0)


def _first_line(source: Path | BinaryIO) -> str:
    """The first line of the file as text (the stream is rewound), to tell CSV layouts apart."""
    if isinstance(source, Path):
        with open(source, "rb") as f:
            raw = f.readline(4096)
    else:
        raw = source.readline(4096)
        source.seek(0)
    return raw.decode("utf-8", errors="replace").strip()


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
