"""Import one candle file: read it, check every row, and store the good rows with COPY, all or nothing.

The good rows of a file are upserted (crypto + time) in one transaction, so
a re-import updates candles and never duplicates them; a file refused as a
whole stores nothing. Reading lives in candle_files, row checks in candle_checks.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from api.db import repository as repo
from api.services.candle_checks import (DATE_FORMATS, CandleValidator, ImportReport, check_date_format,
                                         check_fits_series, report_gaps)
from api.services.candle_files import (PRICE_COLUMNS, ImportRejected, NotTyped, _typed_csv_batches, blank_lines,
                                       read_csv_candles, read_parquet_candles, read_xlsx_candles)
from api.services.errors import Conflict

__all__ = ["ImportRejected", "ImportReport", "check_symbol", "import_candles", "import_csv", "symbol_from_path"]

from api.services.selection import SYMBOL_RE  # noqa: E402 - one definition of a symbol's shape


def symbol_from_path(path: Path) -> str:
    """BTCUSDT.csv -> BTCUSDT (validated like any symbol)."""
    return check_symbol(path.stem.split("-")[0].split("_")[0])


def check_symbol(symbol: str) -> str:
    """A symbol is letters, digits and . _ - (at most 32), starting with a letter or digit."""
    if not SYMBOL_RE.match(symbol or ""):
        raise ImportRejected(f"symbol {str(symbol)[:40]!r} must be 1-32 characters of A-Z a-z 0-9 . _ - "
                             "starting with a letter or digit", field="symbol")
    return symbol.upper()


def import_csv(engine: Engine, path: Path, symbol: str | None = None, date_format: str | None = None) -> ImportReport:
    """Validate one candle file (CSV, Parquet or .xlsx, by extension) and upsert its good rows."""
    return import_candles(engine, path, path.name, symbol, date_format=date_format)


def import_candles(engine: Engine, source: Path | BinaryIO, filename: str, symbol: str | None = None,
                   sheet: str | None = None, date_format: str | None = None) -> ImportReport:
    """Validate one candle file (a path or an open binary file) and upsert its good rows in one transaction.

    A CSV is read and checked in blocks while PostgreSQL stores the blocks
    before it, so the two share the machine's cores; a file that fails as a
    whole, even at its last row, rolls back and stores nothing. Imports of one
    symbol take turns (a lock held to the commit): a second one waits up to
    the lock timeout and then upserts, or raises Conflict (409). date_format
    (candle_checks.DATE_FORMATS, or None/"auto") says how the dates are
    written; by default it is decided once for the whole file.
    """
    symbol = check_symbol(symbol) if symbol else symbol_from_path(Path(filename or ""))
    fmt = check_date_format(date_format)
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".txt", "", ".parquet", ".pq", ".xlsx"):
        raise ImportRejected(f"unsupported file type {suffix!r}: send CSV (.csv), Parquet (.parquet) or .xlsx")
    with engine.begin() as conn:
        if not repo.lock_symbol_imports(conn, symbol):  # before deciding whether the crypto is new
            raise Conflict(f"another import of {symbol} is still running; nothing was stored, retry when it is done",
                           [{"field": "symbol", "message": f"{symbol} is being imported by another request"}])
        existing = repo.find_crypto(conn, symbol=symbol)
        # a new crypto's interval is known only at the end of the file; a failed file rolls this back
        crypto_id = existing["id"] if existing else repo.insert_cryptocurrency(conn, symbol, symbol, "1d")
        upsert = existing is not None
        fits = functools.partial(check_fits_series, symbol, existing["interval"],
                                 repo.series_first_time(conn, crypto_id)) if existing else None
        store = functools.partial(_store, conn, symbol, crypto_id, upsert, date_format=fmt, fits=fits)
        if suffix in (".parquet", ".pq"):
            report, stored = store([read_parquet_candles(source)])
        elif suffix == ".xlsx":
            report, stored = store([read_xlsx_candles(source, sheet)])
        else:
            blanks = functools.partial(blank_lines, source)  # the file is read once more only if a row is reported
            try:
                with conn.begin_nested():  # the typed reader may meet a bad cell late: undo its rows
                    report, stored = store(_typed_csv_batches(source), blanks, streamed=True)
            except NotTyped:  # or day-month-year dates, told apart on the whole column
                report, stored = store([read_csv_candles(source)], blanks)
        if existing is None:
            repo.set_crypto_interval(conn, crypto_id, report.interval)
        # gaps over the whole stored series: a new crypto's is this file's good rows, else read back
        report_gaps(report, repo.price_times(conn, crypto_id) if upsert else np.sort(stored))
    return report


def _store(conn: Any, symbol: str, crypto_id: int, upsert: bool, frames: Iterable[pd.DataFrame],
           blanks: Callable[[], np.ndarray] | None = None, *, date_format: str | None = None,
           streamed: bool = False, fits: Callable[[str, np.ndarray], None] | None = None,
           ) -> tuple[ImportReport, np.ndarray]:
    """Check each frame's rows and COPY the good ones as they come; the report of the whole file, and the
    times of the rows stored (epoch seconds, in file order).

    fits(interval, times) refuses a file that does not continue the crypto's
    stored series; it runs before the COPY ends, so a refused file writes nothing.
    """
    report = ImportReport(symbol=symbol)
    checks = CandleValidator(report, blanks, date_format, streamed)
    stored: list[np.ndarray] = []
    with repo.price_sink(conn, crypto_id, upsert=upsert) as sink:
        for frame in frames:
            seconds, values = checks.feed(frame)
            sink.write(seconds, *(values[k] for k in (*PRICE_COLUMNS, "volume")))
            stored.append(seconds)
        if report.rows_read == 0:
            raise ImportRejected("the file has a header but no rows")
        if sink.rows_sent == 0:  # before finish(): the reasons say more than "no interval"
            raise ImportRejected(f"no valid rows ({report.rows_rejected} rejected: {report.rejected_by_reason}; "
                                 f"dates read as {DATE_FORMATS[report.date_format]})")
        checks.finish()
        times = np.concatenate(stored)
        if fits is not None:
            fits(report.interval, times)
    report.rows_stored = sink.rows_sent
    report.rows_unchanged = sink.rows_sent - sink.rows_written
    return report, times
