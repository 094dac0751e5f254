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


def read_csv_candles(source: Path | BinaryIO) -> pd.DataFrame:
    """The file's table with lower-cased column names, every cell as text (types are checked later).

    A headerless file of 12 columns whose first cell is a number is read as
    Binance's kline layout.
    """
    try:
        head = _first_line(source)
        _rewind(source)
        cells = head.split(",")
        kline = len(cells) == len(BINANCE_KLINE_COLUMNS) and cells[0].strip().isdigit()
        frame = _read_table(source, kline)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImportRejected(f"not a readable CSV table: {exc}") from None
    return _candle_columns(frame)


def validate_candles(frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """The rows that pass every check, with UTC times; every other row goes into the report."""
    lines = np.arange(len(frame)) + 2  # line 1 is the header
    times = _parse_times(frame["time"])
    numbers = {c: _numbers(frame[c]) for c in (*PRICE_COLUMNS, "volume")}
    bad = np.zeros(len(frame), dtype=bool)

    def reject(mask: np.ndarray, column: str, reason: str) -> None:
        nonlocal bad
        mask = np.asarray(mask, dtype=bool) & ~bad  # each row reported once, for its first problem
        if not mask.any():
            return
        report.rejected_by_reason[reason] = report.rejected_by_reason.get(reason, 0) + int(mask.sum())
        room = MAX_REPORTED - len(report.errors)
        for i in np.flatnonzero(mask)[:max(room, 0)]:
            report.errors.append({"line": int(lines[i]), "column": column,
                                  "value": str(frame[column].iat[i])[:64],
                                  "reason": reason})
        bad |= mask

    reject(times.isna().to_numpy(), "time", "unparseable date")
    for c in (*PRICE_COLUMNS, "volume"):
        if not pd.api.types.is_numeric_dtype(frame[c]):
            reject(numbers[c].isna().to_numpy() & (frame[c].str.strip() != "").to_numpy(), c, "not a number")
        reject(numbers[c].isna().to_numpy(), c, "missing value")
    for c in PRICE_COLUMNS:
        reject(~(numbers[c] > 0).to_numpy() | ~np.isfinite(numbers[c].to_numpy()), c, "price must be a positive finite number")
    o, h, lo, c = (numbers[k].to_numpy() for k in PRICE_COLUMNS)
    reject(h < np.maximum(o, c), "high", "high below max(open, close)")
    reject(lo > np.minimum(o, c), "low", "low above min(open, close)")
    reject(~(numbers["volume"] >= 0).to_numpy() | ~np.isfinite(numbers["volume"].to_numpy()), "volume",
           "volume must be zero or positive")
    reject(times.duplicated(keep="first").to_numpy() & times.notna().to_numpy(), "time", "duplicate timestamp")
    good = ~bad
    report.errors.sort(key=lambda e: e["line"])
    report.rows_read = len(frame)
    report.rows_rejected = int(bad.sum())
    clean = pd.DataFrame({"time": times[good], **{k: numbers[k][good] for k in (*PRICE_COLUMNS, "volume")}})
    # the spacing is judged on every dated row, so rejected rows do not make gaps that fake an interval
    report.interval = detect_interval(times.dropna().drop_duplicates().sort_values())
    return clean.sort_values("time", kind="stable").reset_index(drop=True)


def detect_interval(times: pd.Series) -> str:
    """The candle interval, when every gap is a whole number of one known interval; else ImportRejected."""
    if len(times) < 2:
        raise ImportRejected("at least two valid candles are needed to tell their interval")
    gaps = np.diff(_epoch_seconds(times))
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
    """Validate one candle file (a path or an open binary file) and upsert its good rows in one transaction."""
    symbol = check_symbol(symbol) if symbol else symbol_from_path(Path(filename or ""))
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".txt", "", ".parquet", ".pq", ".xlsx"):
        raise ImportRejected(f"unsupported file type {suffix!r}: send CSV (.csv), Parquet (.parquet) or .xlsx")
    report = ImportReport(symbol=symbol)
    if suffix in (".parquet", ".pq"):
        frame = read_parquet_candles(source)
    elif suffix == ".xlsx":
        frame = read_xlsx_candles(source, sheet)
    else:
        frame = read_csv_candles(source)
    clean = validate_candles(frame, report)
    if clean.empty:
        raise ImportRejected(f"no valid rows ({report.rows_rejected} rejected: {report.rejected_by_reason})")
    with engine.begin() as conn:
        existing = repo.find_crypto(conn, symbol=symbol)
        if existing is not None and existing["interval"] != report.interval:
            raise ImportRejected(f"{symbol} holds {existing['interval']} candles; this file has {report.interval}")
        crypto_id = existing["id"] if existing else repo.insert_cryptocurrency(conn, symbol, symbol, report.interval)
        report.rows_stored = repo.copy_prices(
            conn, crypto_id, _epoch_seconds(clean["time"]).astype("datetime64[s]"),
            *(clean[k].to_numpy(dtype=np.float64) for k in (*PRICE_COLUMNS, "volume")),
            upsert=existing is not None)  # a new crypto has nothing to merge with
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
    time_col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in frame.columns]
    if time_col is None or missing:
        wanted = "one of date/timestamp/open_time" if time_col is None else ", ".join(missing)
        raise ImportRejected(f"missing columns: {wanted} (found: {', '.join(frame.columns) or 'none'})")
    if frame.empty:
        raise ImportRejected("the file has a header but no rows")
    return frame.rename(columns={time_col: "time"})[["time", *PRICE_COLUMNS, "volume"]]


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


def _parse_times(raw: pd.Series) -> pd.Series:
    """Dates, ISO timestamps or epoch numbers (s, ms or us, told apart by size) as UTC datetimes."""
    if pd.api.types.is_datetime64_any_dtype(raw):  # typed timestamps (Parquet): naive ones are UTC
        return raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(raw):
        raw = raw.astype("float64").map(lambda v: "" if v != v else repr(v))
    text = raw.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    as_epoch = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    is_num = numeric.notna()
    if is_num.any():
        values = numeric[is_num].astype("float64")
        unit_scale = np.where(values >= 1e14, 1e-6, np.where(values >= 1e11, 1e-3, 1.0))
        seconds = (values * unit_scale).round().astype("int64")
        as_epoch[is_num] = pd.to_datetime(seconds, unit="s", utc=True)
    parsed = pd.to_datetime(text.where(~is_num), utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & ~is_num & (text != "")
    if retry.any():  # not ISO 8601: let pandas infer each remaining one
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    return as_epoch.where(is_num, parsed)
