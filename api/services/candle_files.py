"""Candle files in, pandas frames out: CSV (typed and streamed, or cell by cell), Parquet, .xlsx.

Formats: CSV with a header (`date|timestamp|open_time, open, high, low,
close, volume`, any case and spacing, so Binance's own header `Open time,Open,...`
too; extra columns are ignored), Binance's kline CSV (12 columns, no header, open
time in ms or us), Parquet (same columns; read with a pyarrow that no longer
deserializes arbitrary extension types, CVE-2023-47248) and Excel .xlsx
(first sheet or a named one; read-only through defusedxml, the archive's
uncompressed size capped before anything is parsed, formulas read as text and
so rejected as "not a number", never evaluated). Every frame has the columns
time, open, high, low, close, volume; judging the cells is candle_checks' job.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from api.services.errors import ServiceError

TIME_COLUMNS = ("date", "timestamp", "opentime")  # as column_key writes them
PRICE_COLUMNS = ("open", "high", "low", "close")
BINANCE_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                         "trades", "taker_base_volume", "taker_quote_volume", "ignore")


class ImportRejected(ServiceError):
    """The file as a whole cannot be imported (not a table, wrong columns, empty, irregular spacing...)."""

    def __init__(self, detail: str, field: str = "file") -> None:
        super().__init__(detail, [{"field": field, "message": detail}])


def read_csv_candles(source: Path | BinaryIO) -> pd.DataFrame:
    """The whole file's table with lower-cased column names, read by pandas cell by cell.

    The fallback for a file the typed streaming reader cannot take: a column
    with a bad cell is read as text, so each bad cell can be reported. A
    headerless file of 12 columns whose first cell is a number is read as
    Binance's kline layout.
    """
    try:
        frame = _read_table(source, _is_kline(source))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImportRejected(f"not a readable CSV table: {exc}") from None
    return _candle_columns(frame)


class NotTyped(Exception):
    """Arrow's typed reader (block by block) cannot take this file: read it again, whole, cell by cell."""


CSV_BLOCK_BYTES = 4 << 20


def _typed_csv_batches(source: Path | BinaryIO) -> Iterator[pd.DataFrame]:
    """Candle frames of ~4 MB blocks from Arrow's streaming CSV reader; NotTyped when a cell is not.

    Types are inferred from the first block; a later cell that does not fit
    (a word in a price column, a malformed date) raises NotTyped, and so may
    the caller when a block's dates need the whole column to be read.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES,
                             column_names=list(BINANCE_KLINE_COLUMNS) if _is_kline(source) else None)
    try:
        reader = pacsv.open_csv(source, read_options=read,
                                convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
        usable = _typed_schema_usable(reader.schema)
    except (pa.ArrowException, OSError, ValueError):  # UnicodeDecodeError too: bytes that are not UTF-8
        raise NotTyped from None
    if not usable:
        raise NotTyped
    _check_columns([column_key(n) for n in reader.schema.names])
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError):
            raise NotTyped from None
        if batch.num_rows:
            yield _candle_columns(pa.Table.from_batches([batch]).to_pandas(date_as_object=False))


def blank_lines(source: Path | BinaryIO, chunk_bytes: int = 8 << 20) -> np.ndarray:
    """1-based numbers of the file's empty lines that come before its last non-empty one.

    The CSV readers skip empty lines; a bad row's line number in the report
    must still be its line in the file. A first pass only looks for an empty
    line (vectorized, chunk by chunk); the line-by-line walk runs only for a
    file that has one. The stream is rewound.
    """
    if not _has_inner_empty_line(source, chunk_bytes):
        return np.array([], dtype=np.int64)
    found: list[int] = []
    pending: list[int] = []  # empty lines not yet followed by a non-empty one
    with _rewound(source) as stream:
        for number, raw in enumerate(stream, start=1):
            if raw.strip(b"\r\n") == b"":
                pending.append(number)
            else:
                found.extend(pending)
                pending.clear()
    return np.array(found, dtype=np.int64)


def _has_inner_empty_line(source: Path | BinaryIO, chunk_bytes: int) -> bool:
    """Whether an empty line comes before the file's last content (empty lines at the end do not count).

    Vectorized over each chunk's line breaks: a line is empty when its break
    follows the previous one directly, or with only a carriage return between.
    """
    pos, prev_nl, prev_byte, pending = 0, -1, 10, False  # the start of the file counts as a line break
    with _rewound(source) as stream:
        while chunk := stream.read(chunk_bytes):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            if pending and _has_content(arr):
                return True
            nl = np.flatnonzero(arr == 10)
            if nl.size:
                gap = np.diff(nl, prepend=prev_nl - pos)
                before = np.where(nl > 0, arr[np.maximum(nl - 1, 0)], prev_byte)
                empty = (gap == 1) | ((gap == 2) & (before == 13))
                if empty.any():
                    if _has_content(arr[nl[np.argmax(empty)] + 1:]):
                        return True
                    pending = True
                prev_nl = pos + int(nl[-1])
            prev_byte, pos = int(arr[-1]), pos + len(arr)
    return False


def _has_content(arr: np.ndarray) -> bool:
    """Any byte other than a line break or carriage return."""
    return bool(((arr != 10) & (arr != 13)).any())


@contextlib.contextmanager
def _rewound(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    """The file open from its start; an open stream is rewound again afterwards, a path closed."""
    if isinstance(source, Path):
        with open(source, "rb") as f:
            yield f
        return
    source.seek(0)
    try:
        yield source
    finally:
        source.seek(0)


def _is_kline(source: Path | BinaryIO) -> bool:
    """A headerless 12-column file whose first cell is a number: Binance's kline layout (stream rewound)."""
    head = _first_line(source)
    cells = head.split(",")
    return len(cells) == len(BINANCE_KLINE_COLUMNS) and cells[0].strip().isdigit()


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


_NAME_NOISE = re.compile(r"[\s_-]+")


def column_key(name: Any) -> str:
    """A header name as it is matched: lower case without spaces, _ or - ('Open time', 'OPEN_TIME' -> 'opentime')."""
    return _NAME_NOISE.sub("", str(name)).lower()


def _candle_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Names as column_key writes them, the time column found and renamed, only the six candle columns kept.

    The time column's name in the file is kept in attrs["time_column"], for messages.
    """
    names = [str(c).strip() for c in frame.columns]
    frame.columns = [column_key(c) for c in names]
    time_col = _check_columns(list(frame.columns))
    if frame.empty:
        raise ImportRejected("the file has a header but no rows")
    out = frame.rename(columns={time_col: "time"})[["time", *PRICE_COLUMNS, "volume"]]
    out.attrs["time_column"] = names[list(frame.columns).index(time_col)]
    return out


def _check_columns(names: list[str]) -> str:
    """The name of the time column; ImportRejected naming what is missing."""
    time_col = next((c for c in TIME_COLUMNS if c in names), None)
    missing = [c for c in (*PRICE_COLUMNS, "volume") if c not in names]
    if time_col is None or missing:
        wanted = "one of date/timestamp/open_time" if time_col is None else ", ".join(missing)
        raise ImportRejected(f"missing columns: {wanted} (found: {', '.join(names) or 'none'})")
    return time_col


def _typed_schema_usable(schema: Any) -> bool:
    """Every price and volume column numeric, the time column a time, a number or text; names unique.

    Only empty cells count as missing (null_values=[""]), as in the text
    reader, so both paths judge a cell the same way.
    """
    import pyarrow as pa

    names = [column_key(n) for n in schema.names]
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
        numeric = {c: "float64" for c in head.columns if column_key(c) in (*PRICE_COLUMNS, "volume")}
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
    with _rewound(source) as stream:
        raw = stream.readline(4096)
    return raw.decode("utf-8", errors="replace").strip()
