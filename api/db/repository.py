"""All SQL of the service. Functions take a SQLAlchemy Connection and return plain data.

The caller owns the transaction (`engine.begin()`), so a batch's writes can
be made all-or-nothing by the service without this module knowing about it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import struct
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from psycopg.copy import QueuedLibpqWriter
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from api.db.migrate import current_revision, head_revision

# the metric columns of crypto_backtest_results (migrations 0001 and 0009), in the engine's METRICS order;
# a test checks they are exactly the engine's metrics
METRIC_COLUMNS = (
    "total_return", "final_value", "buy_and_hold_return", "num_trades", "win_rate",
    "max_drawdown", "sharpe_ratio", "sortino_ratio", "exposure", "profit_factor", "open_position",
    "total_fees", "cagr", "calmar_ratio", "sqn", "avg_trade_return", "best_trade", "worst_trade",
    "max_drawdown_duration", "avg_bars_held",
)
_INTEGER_METRICS = frozenset({"num_trades", "max_drawdown_duration"})


# ---- cryptocurrencies and prices ---------------------------------------------------------

def list_cryptos_with_data(conn: Connection) -> list[dict[str, Any]]:
    """Cryptos that have at least one candle, in id order, with their candle count (the batch's universe)."""
    rows = conn.execute(text(
        "SELECT c.id, c.symbol, c.name, c.interval, s.candle_count AS candles, s.data_version "
        "FROM cryptocurrencies c "
        "JOIN crypto_candle_series s ON s.crypto_id = c.id ORDER BY c.id"
    )).mappings()
    return [dict(r) for r in rows]


def crypto_summaries(conn: Connection) -> list[dict[str, Any]]:
    """Cryptos with data plus first/last candle time and row count."""
    rows = conn.execute(text(
        "SELECT c.id, c.symbol, c.name, c.interval, c.is_synthetic, s.first_time, s.last_time, s.candle_count AS rows "
        "FROM cryptocurrencies c JOIN crypto_candle_series s ON s.crypto_id = c.id ORDER BY c.id"
    )).mappings()
    return [dict(r) for r in rows]


def find_crypto(conn: Connection, *, crypto_id: int | None = None, symbol: str | None = None) -> dict[str, Any] | None:
    """One crypto by id or by symbol (case-insensitive), or None."""
    if crypto_id is not None:
        row = conn.execute(text("SELECT id, symbol, name, interval FROM cryptocurrencies WHERE id = :id"),
                           {"id": crypto_id}).mappings().first()
    else:
        row = conn.execute(text("SELECT id, symbol, name, interval FROM cryptocurrencies WHERE upper(symbol) = upper(:s)"),
                           {"s": symbol}).mappings().first()
    return dict(row) if row else None


CANDLE_FIELDS: tuple[str, ...] = ("time", "open", "high", "low", "close", "volume")
# each field's column of crypto_candle_series (0008) and its values' type there (big-endian, as PostgreSQL sends them)
_FIELD_COLUMNS = {"time": "times", "open": "opens", "high": "highs", "low": "lows", "close": "closes",
                  "volume": "volumes"}
_FIELD_WIRE = {name: np.dtype(">i8" if name == "time" else ">f8") for name in CANDLE_FIELDS}
_FIELD_NATIVE = {name: np.dtype(np.int64 if name == "time" else np.float64) for name in CANDLE_FIELDS}


@dataclass(frozen=True)
class PriceSeries:
    """One crypto's candles in time order, the fields a run asked for.

    `time` (int64 epoch seconds, UTC) and open, high, low, close, volume
    (float64) are each a native-endian, C-contiguous, writable array, or None
    when that field was not read. candle_count, first_time and last_time
    (epoch seconds; None without candles) are always there.
    """

    first_time: int | None
    last_time: int | None
    candle_count: int
    time: np.ndarray | None = None
    open: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    close: np.ndarray | None = None
    volume: np.ndarray | None = None
    read: frozenset[str] | None = None  # the fields held, when the reader says (else computed)
    version: int | None = None  # the series' data_version (migration 0011): it changes with any candle

    def __len__(self) -> int:
        return self.candle_count

    def fields(self) -> frozenset[str]:
        """The fields this series holds (read)."""
        if self.read is not None:
            return self.read
        return frozenset(name for name in CANDLE_FIELDS if getattr(self, name) is not None)


def candle_fields(fields: Iterable[str]) -> tuple[str, ...]:
    """fields (any iterable of CANDLE_FIELDS names) in CANDLE_FIELDS order, without repeats; ValueError if unknown."""
    if type(fields) is frozenset:
        return _ordered_fields(fields)
    return _ordered_fields(frozenset((fields,) if isinstance(fields, str) else fields))


@functools.lru_cache(maxsize=64)
def _ordered_fields(wanted: frozenset[str]) -> tuple[str, ...]:
    unknown = wanted.difference(CANDLE_FIELDS)
    if unknown:
        raise ValueError(f"unknown candle fields {sorted(unknown)}; known: {', '.join(CANDLE_FIELDS)}")
    return tuple(name for name in CANDLE_FIELDS if name in wanted)


@functools.lru_cache(maxsize=64)
def _candles_sql(fields: tuple[str, ...]) -> str:
    """The one query of a crypto's series: span, count, then the columns of `fields` (in that order)."""
    return ("SELECT extract(epoch FROM first_time)::bigint, extract(epoch FROM last_time)::bigint, candle_count, "
            "data_version" + "".join(f", {_FIELD_COLUMNS[name]}" for name in fields)
            + " FROM crypto_candle_series WHERE crypto_id = %s")


_TIMES_SQL = ("SELECT string_agg(int8send(extract(epoch FROM time)::bigint), ''::bytea ORDER BY time) "
              "FROM crypto_prices WHERE crypto_id = %s")


def load_candles(dbapi_conn: Any, crypto_id: int, fields: Iterable[str] = CANDLE_FIELDS) -> PriceSeries:
    """One crypto's candles, only `fields` of them, and span in ONE round trip, from its packed series.

    crypto_candle_series (migration 0008) holds each field of a crypto's
    candles as one bytea of big-endian values, which numpy reads as is;
    reading ~1,800 rows from crypto_prices per crypto was the largest cost of
    a batch, and only the columns of `fields` are read (most runs need the
    closes alone). dbapi_conn is a psycopg connection
    (`conn.connection.driver_connection` of a SQLAlchemy Connection, or a
    worker's own). A crypto without candles gives an empty series (count 0,
    the requested fields as empty arrays).
    """
    names = candle_fields(fields)
    with dbapi_conn.cursor(binary=True) as cur:
        row = cur.execute(_candles_sql(names), (crypto_id,)).fetchone()
    if row is None:
        return _empty_series(names)
    return _series(names, row)


def _empty_series(fields: tuple[str, ...]) -> PriceSeries:  # fresh arrays each time: they are writable
    return PriceSeries(None, None, 0, **{name: np.empty(0, _FIELD_NATIVE[name]) for name in fields})


def series_first_time(conn: Connection, crypto_id: int) -> int | None:
    """The time of a crypto's first stored candle (epoch seconds), from its packed series; None without candles."""
    return conn.execute(text("SELECT extract(epoch FROM first_time)::bigint FROM crypto_candle_series "
                             "WHERE crypto_id = :id"), {"id": crypto_id}).scalar()


def price_times(conn: Connection, crypto_id: int) -> np.ndarray:
    """Every candle time of one crypto in time order (int64 epoch seconds), in one query, in conn's transaction."""
    with conn.connection.driver_connection.cursor(binary=True) as cur:
        packed = cur.execute(_TIMES_SQL, (crypto_id,)).fetchone()[0]
    return np.frombuffer(packed, dtype=">i8").astype(np.int64) if packed is not None else np.empty(0, np.int64)


def _series(fields: tuple[str, ...], row: Sequence[Any]) -> PriceSeries:
    """A (first, last, count, version, *columns) row of _candles_sql(fields) as a PriceSeries.

    Each column's big-endian bytes become a native array in one byte-swapping
    copy (writable and C-contiguous, as the engine wants).
    """
    arrays = {name: np.frombuffer(packed, dtype=_FIELD_WIRE[name]).astype(_FIELD_NATIVE[name])
              for name, packed in zip(fields, row[4:])}
    return PriceSeries(int(row[0]), int(row[1]), int(row[2]), **arrays, read=_field_set(fields),
                       version=int(row[3]))


@functools.lru_cache(maxsize=64)
def _field_set(fields: tuple[str, ...]) -> frozenset[str]:
    return frozenset(fields)


def load_candles_many(dbapi_conn: Any, crypto_ids: Sequence[int],
                      fields: Iterable[str] = CANDLE_FIELDS) -> dict[int, PriceSeries]:
    """Several cryptos' candles (only `fields`) in ONE round trip (as load_candles; a crypto without data is absent).

    Per-crypto round trips cost a wake-up of the server and of the client
    each: on this VM about half of an hourly batch went into them. The
    queries go out together in pipeline mode, one result each: a single
    multi-row result of large values raised each process's peak memory by
    ~30 MB, these do not.
    """
    names = candle_fields(fields)
    sql = _candles_sql(names)
    cursors = []
    with dbapi_conn.pipeline():
        for crypto_id in crypto_ids:
            cur = dbapi_conn.cursor(binary=True)
            cur.execute(sql, (crypto_id,))
            cursors.append((crypto_id, cur))
    out = {}
    for crypto_id, cur in cursors:
        with cur:
            row = cur.fetchone()
        if row is not None:
            out[int(crypto_id)] = _series(names, row)
    return out


def total_candles(conn: Connection) -> int:
    """Candles stored over all cryptos, from the packed series (no scan of crypto_prices)."""
    return int(conn.execute(text("SELECT coalesce(sum(candle_count), 0) FROM crypto_candle_series")).scalar_one())


def count_prices(conn: Connection) -> int:
    """Number of candles stored."""
    return int(conn.execute(text("SELECT count(*) FROM crypto_prices")).scalar_one())


def lock_symbol_imports(conn: Connection, symbol: str) -> bool:
    """Take the transaction-scoped lock on one symbol's imports, waiting up to the session's lock_timeout.

    Two first imports of a new symbol would both decide it is new and COPY
    the same candles; under this lock the second sees the first's crypto and
    upserts. False when lock_timeout ran out: the transaction is then aborted
    and must be rolled back.
    """
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('price_import:' || upper(:s), 0))"),
                     {"s": symbol})
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return False
        raise
    return True


def insert_cryptocurrency(conn: Connection, symbol: str, name: str, interval: str = "1d",
                          is_synthetic: bool = False) -> int:
    """Create a crypto (or return the existing id for that symbol)."""
    return int(conn.execute(text(
        "INSERT INTO cryptocurrencies (symbol, name, interval, is_synthetic) "
        "VALUES (:symbol, :name, :interval, :syn) "
        "ON CONFLICT (symbol) DO UPDATE SET name = EXCLUDED.name RETURNING id"
    ), {"symbol": symbol, "name": name, "interval": interval, "syn": is_synthetic}).scalar_one())


def delete_cryptocurrencies(conn: Connection, *, symbol: str | None = None,
                            synthetic: bool = False) -> list[dict[str, Any]] | None:
    """Delete one crypto by symbol (case-insensitive) or every synthetic one, with candles, series and results.

    Returns what was deleted ({symbol, candles, results} each), or None when a
    row lock was not granted within the session's lock_timeout (a batch is
    storing results for one of them, or an import is writing it): the
    transaction is then aborted and must be rolled back.
    """
    where, args = ("upper(c.symbol) = upper(:s)", {"s": symbol}) if symbol is not None else ("c.is_synthetic", {})
    try:
        rows = conn.execute(text(
            f"SELECT c.id, c.symbol, coalesce(s.candle_count, 0) AS candles FROM cryptocurrencies c "
            f"LEFT JOIN crypto_candle_series s ON s.crypto_id = c.id WHERE {where} ORDER BY c.id FOR UPDATE OF c"),
            args).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        results = dict(conn.execute(text("SELECT crypto_id, count(*) FROM crypto_backtest_results "
                                         "WHERE crypto_id = ANY(:ids) GROUP BY crypto_id"), {"ids": ids}).all())
        conn.execute(text("DELETE FROM cryptocurrencies WHERE id = ANY(:ids)"), {"ids": ids})
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return None
        raise
    return [{"symbol": r["symbol"], "candles": int(r["candles"]), "results": int(results.get(r["id"], 0))}
            for r in rows]


def lock_cryptos_for_results(conn: Connection, crypto_ids: Sequence[int]) -> set[int]:
    """Share-lock these cryptos until the transaction ends (a DELETE of one waits); the ids still there.

    Results are written without per-row foreign-key checks (migration 0003):
    this keeps a crypto from being deleted between its last read and its
    results' COPY, which would leave them behind.
    """
    rows = conn.execute(text("SELECT id FROM cryptocurrencies WHERE id = ANY(:ids) ORDER BY id FOR KEY SHARE"),
                        {"ids": list(crypto_ids)}).scalars().all()
    return set(rows)


def delete_synthetic_cryptos(conn: Connection) -> int:
    """Delete the synthetic demo cryptos (their candles, packed series and results go with them); how many."""
    return conn.execute(text("DELETE FROM cryptocurrencies WHERE is_synthetic")).rowcount


def _write_candle_series(cur: Any, crypto_id: int, kept: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """The packed series of a crypto's first candles, as the insert trigger would build it.

    kept holds (binary-COPY times, _KEPT_CANDLES records) per written batch.
    Each column gets the bytes of string_agg(int8send(extract(epoch FROM
    time)::bigint) ORDER BY time), string_agg(float8send(open) ...), ... When
    the crypto has a series after all (another writer got there first), or a
    time has a fraction of a second (its rounding to epoch seconds is left to
    the server), it is rebuilt from crypto_prices instead.
    """
    if not kept:
        return
    pg_us = np.concatenate([t for t, _ in kept])
    records = np.concatenate([r for _, r in kept])
    if (np.diff(pg_us) < 0).any():
        order = np.argsort(pg_us, kind="stable")
        pg_us, records = pg_us[order], records[order]
    whole_seconds = not (pg_us % 1_000_000).any()
    if whole_seconds:
        columns = [np.ascontiguousarray(records[name], dtype=_FIELD_WIRE[name]).tobytes() for name in CANDLE_FIELDS]
        cur.execute(
            f"INSERT INTO crypto_candle_series (crypto_id, {', '.join(_FIELD_COLUMNS[n] for n in CANDLE_FIELDS)}, "
            "first_time, last_time, candle_count) "
            f"VALUES (%s, {', '.join('%s' for _ in CANDLE_FIELDS)}, to_timestamp(%s), to_timestamp(%s), %s) "
            "ON CONFLICT (crypto_id) DO NOTHING",
            (crypto_id, *columns, _pg_seconds(pg_us[0]), _pg_seconds(pg_us[-1]), len(records)))
    if not whole_seconds or cur.rowcount == 0:
        cur.execute("SELECT refresh_candle_series(ARRAY[%s])", (crypto_id,))


def _pg_seconds(pg_us: np.int64) -> Any:
    """A binary-COPY time (microseconds since 2000-01-01) as exact Unix seconds (a Decimal)."""
    from decimal import Decimal

    return Decimal(int(pg_us) + _PG_EPOCH_US) / Decimal(1_000_000)


def set_crypto_interval(conn: Connection, crypto_id: int, interval: str) -> None:
    """Record a crypto's candle interval (known once its first file has been read to the end)."""
    conn.execute(text("UPDATE cryptocurrencies SET interval = :i WHERE id = :id"), {"i": interval, "id": crypto_id})


_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
# one candle as the loader keeps it for _write_candle_series (big-endian, as the series' columns hold the values)
_KEPT_CANDLES = np.dtype([(name, _FIELD_WIRE[name]) for name in CANDLE_FIELDS])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8  # binary COPY: signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_COPY_ROW = np.dtype([
    ("nfields", ">i2"),
    ("l_id", ">i4"), ("crypto_id", ">i4"),
    ("l_time", ">i4"), ("time", ">i8"),
    ("l_open", ">i4"), ("open", ">f8"), ("l_high", ">i4"), ("high", ">f8"),
    ("l_low", ">i4"), ("low", ">f8"), ("l_close", ">i4"), ("close", ">f8"),
    ("l_volume", ">i4"), ("volume", ">f8"),
])


def price_copy_rows(crypto_id: int, times: np.ndarray, open_: np.ndarray, high: np.ndarray,
                       low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """PostgreSQL binary COPY tuples for candles, as one numpy structured array (header and trailer apart).

    Binary COPY moves float64 values bit for bit (no text formatting either
    way) and is several times faster than CSV for this shape of data.
    """
    epoch_us = np.asarray(times).astype("datetime64[us]").astype(np.int64)
    rows = np.empty(len(epoch_us), dtype=_COPY_ROW)
    rows["nfields"] = 7
    rows["l_id"], rows["crypto_id"] = 4, crypto_id
    rows["l_time"], rows["time"] = 8, epoch_us - _PG_EPOCH_US
    for name, values in (("open", open_), ("high", high), ("low", low), ("close", close), ("volume", volume)):
        rows[f"l_{name}"], rows[name] = 8, values
    return rows


_PRICE_COLUMNS = "(crypto_id, time, open, high, low, close, volume)"


def copy_prices(conn: Connection, crypto_id: int, times: np.ndarray, open_: np.ndarray, high: np.ndarray,
                low: np.ndarray, close: np.ndarray, volume: np.ndarray, upsert: bool = True) -> int:
    """Bulk-load candles with binary COPY (times: datetime64, UTC). Returns rows written.

    upsert=True merges into existing candles (same crypto and time: updated);
    upsert=False copies straight into the table, for a crypto known to be new.
    """
    if len(times) == 0:
        return 0
    with price_sink(conn, crypto_id, upsert) as sink:
        sink.write(times, open_, high, low, close, volume)
    return sink.rows_written


class PriceSink:
    """An open binary COPY of one crypto's candles; `write` queues a batch and returns at once.

    The rows go to the server from psycopg's writer thread, so the caller
    can read and check the next batch while PostgreSQL stores this one.
    """

    def __init__(self, copy: Any, crypto_id: int, keep_candles: bool = False) -> None:
        self._copy = copy
        self._crypto_id = crypto_id
        self.rows_sent = 0
        self.rows_written = 0
        # with keep_candles, (COPY times, _KEPT_CANDLES records) of each batch, for _write_candle_series
        self.kept: list[tuple[np.ndarray, np.ndarray]] | None = [] if keep_candles else None

    def write(self, times: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
              volume: np.ndarray) -> None:
        """Queue candles (times: datetime64 or int64 epoch seconds, UTC)."""
        if len(times) == 0:
            return
        if np.asarray(times).dtype.kind in "iu":
            times = np.asarray(times).astype("datetime64[s]")
        rows = price_copy_rows(self._crypto_id, times, open_, high, low, close, volume)
        if self.kept is not None:
            pg_us = rows["time"].astype(np.int64)
            records = np.empty(len(rows), dtype=_KEPT_CANDLES)
            records["time"] = (pg_us + _PG_EPOCH_US) // 1_000_000  # whole seconds (else the server rebuilds)
            for name in CANDLE_FIELDS[1:]:
                records[name] = rows[name]
            self.kept.append((pg_us, records))
        view = memoryview(rows).cast("B")  # slices of the array: no copy of the payload
        for start in range(0, len(view), 8 << 20):
            self._copy.write(view[start:start + (8 << 20)])
        self.rows_sent += len(rows)


@contextlib.contextmanager
def price_sink(conn: Connection, crypto_id: int, upsert: bool = True) -> Iterator[PriceSink]:
    """COPY candles of one crypto in batches; on a clean exit they are stored (merged when upsert).

    An exception inside the block aborts the COPY; the caller's transaction
    then rolls back, so a file that fails halfway stores nothing.
    """
    cur = conn.connection.driver_connection.cursor()
    try:
        if upsert:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS _price_load (LIKE crypto_prices INCLUDING DEFAULTS) "
                        "ON COMMIT DROP")
            cur.execute("TRUNCATE _price_load")
            table = "_price_load"
        else:  # a new crypto: its packed candle series is written here, not by the trigger
            cur.execute("SELECT 1 FROM cryptocurrencies WHERE id = %s FOR UPDATE", (crypto_id,))
            cur.execute("SET LOCAL app.candle_series_by_caller = 'on'")
            table = "crypto_prices"
        with cur.copy(f"COPY {table} {_PRICE_COLUMNS} FROM STDIN WITH (FORMAT binary)",
                      writer=QueuedLibpqWriter(cur)) as copy:
            copy.write(_COPY_HEADER)
            sink = PriceSink(copy, crypto_id, keep_candles=not upsert)
            yield sink
            copy.write(_COPY_TRAILER)
        if upsert:
            cur.execute(
                f"INSERT INTO crypto_prices {_PRICE_COLUMNS} SELECT * FROM _price_load "
                "ON CONFLICT (crypto_id, time) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, "
                "low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume "
                "WHERE (crypto_prices.open, crypto_prices.high, crypto_prices.low, crypto_prices.close, "
                "crypto_prices.volume) IS DISTINCT FROM "
                "(EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume)")
            sink.rows_written = cur.rowcount
            cur.execute("TRUNCATE _price_load")
        else:
            sink.rows_written = sink.rows_sent
            cur.execute("SET LOCAL app.candle_series_by_caller = 'off'")
            _write_candle_series(cur, crypto_id, sink.kept or [])
    finally:
        cur.close()


# ---- strategies --------------------------------------------------------------------------

def upsert_strategies(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert or update strategy rows by id (code, name, description, parameter_schema); how many."""
    for row in rows:
        conn.execute(text(
            "INSERT INTO strategies (id, code, name, description, parameter_schema) "
            "VALUES (:id, :code, :name, :description, CAST(:schema AS jsonb)) "
            "ON CONFLICT (id) DO UPDATE SET code = EXCLUDED.code, name = EXCLUDED.name, "
            "description = EXCLUDED.description, parameter_schema = EXCLUDED.parameter_schema"),
            {**row, "schema": orjson.dumps(row["parameter_schema"]).decode()})
    conn.execute(text("SELECT setval(pg_get_serial_sequence('strategies', 'id'), "
                      "(SELECT coalesce(max(id), 1) FROM strategies))"))
    return len(rows)


def stored_strategies(conn: Connection) -> list[dict[str, Any]]:
    """The strategy rows as stored (tests compare them with the registry)."""
    rows = conn.execute(text(
        "SELECT id, code, name, description, parameter_schema FROM strategies ORDER BY id")).mappings()
    return [dict(r) for r in rows]


# ---- results -----------------------------------------------------------------------------

def parameters_hash(parameters: Mapping[str, Any]) -> str:
    """Stable SHA-256 of a parameter set (sorted keys), to find earlier runs of the same setting."""
    return hashlib.sha256(orjson.dumps(dict(parameters), option=orjson.OPT_SORT_KEYS)).hexdigest()


_RESULT_COLUMNS = ("batch_id", "strategy_id", "crypto_id", "parameters", "parameters_hash", *METRIC_COLUMNS,
                   "calculation_time_ms", "error", "span_start", "span_end", "data_version", "candles",
                   "first_time", "last_time")
_COPY_RESULTS = f"COPY crypto_backtest_results ({', '.join(_RESULT_COLUMNS)}) FROM STDIN WITH (FORMAT binary)"
# one binary COPY field each: int32 length, then the value in network order
_F8, _I4, _BOOL = struct.Struct(">id"), struct.Struct(">ii"), struct.Struct(">i?")
_I8 = struct.Struct(">iq")  # an int8 field; timestamptz is one too (microseconds since 2000-01-01)
_NULL = b"\xff\xff\xff\xff"
_FIELD_COUNT = struct.pack(">h", len(_RESULT_COLUMNS))
_METRIC_KINDS = tuple(_I4 if c in _INTEGER_METRICS else _BOOL if c == "open_position" else _F8 for c in METRIC_COLUMNS)


Span = tuple[int | None, int | None]  # the requested [start, end] in epoch seconds; None = unbounded
_NO_SPAN: Span = (None, None)


def save_results(conn: Connection, batch_id: str, strategy_id: int, parameters: Mapping[str, Any],
                 results: Sequence[Mapping[str, Any]], span: Span = _NO_SPAN) -> int:
    """Write one row per result with COPY; the caller's transaction makes the batch all-or-nothing."""
    return save_result_sets(conn, batch_id, strategy_id, [(parameters, results)], span)


def save_result_sets(conn: Connection, batch_id: str, strategy_id: int,
                     result_sets: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
                     span: Span = _NO_SPAN) -> int:
    """Write several (parameters, results) sets of one batch (a sweep) in one COPY."""
    return copy_encoded_results(conn, [encode_results(batch_id, strategy_id, result_sets, span)])


def encode_results(batch_id: str, strategy_id: int,
                   result_sets: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
                   span: Span = _NO_SPAN) -> bytes:
    """Result rows as binary COPY tuples, ready for `copy_encoded_results`.

    Pure formatting, no connection: a sweep's pool workers encode their own
    rows, so the parent only streams bytes. Binary COPY carries every float
    bit for bit and spares both sides text formatting and parsing.
    """
    out = []
    head = _FIELD_COUNT + _uuid_field(batch_id) + _I4.pack(4, int(strategy_id))
    tail = _span_fields(span)
    for parameters, results in result_sets:
        params = _parameter_fields(tuple(parameters.items()))
        for r in results:
            error = r.get("error")
            out.append(b"".join((
                head, _I4.pack(4, int(r["crypto_id"])), params,
                *[_NULL if v is None else kind.pack(kind.size - 4, v)
                  for kind, v in zip(_METRIC_KINDS, map(r.get, METRIC_COLUMNS))],
                _F8.pack(8, float(r.get("calculation_time_ms") or 0.0)),
                _NULL if error is None else _jsonb_field(error),
                tail,
                _NULL if r.get("data_version") is None else _I8.pack(8, int(r["data_version"])),
                _I4.pack(4, int(r.get("candles") or 0)),
                _time_field(r.get("first_time")), _time_field(r.get("last_time")),
            )))
    return b"".join(out)


def _time_field(iso: str | None) -> bytes:
    """An ISO 8601 UTC time (as results carry them) as a binary COPY timestamptz field, or NULL."""
    return _NULL if iso is None else _I8.pack(8, epoch_of_iso(iso) * 1_000_000 - _PG_EPOCH_US)


@functools.lru_cache(maxsize=8192)
def epoch_of_iso(iso: str) -> int:
    """Epoch seconds of an ISO 8601 UTC time as results carry them (2024-01-01T00:00:00Z)."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def _span_fields(span: Span) -> bytes:
    """span_start and span_end as binary COPY timestamptz fields (microseconds since 2000-01-01), or NULL."""
    return b"".join(_NULL if t is None else _I8.pack(8, int(t) * 1_000_000 - _PG_EPOCH_US) for t in span)


@functools.lru_cache(maxsize=64)
def _uuid_field(batch_id: str) -> bytes:
    return struct.pack(">i", 16) + uuid.UUID(batch_id).bytes


@functools.lru_cache(maxsize=4096)
def _parameter_fields(items: tuple[tuple[str, Any], ...]) -> bytes:
    """The parameters and parameters_hash fields of a setting (cached: a sweep repeats them per crypto)."""
    parameters = dict(items)
    digest = parameters_hash(parameters).encode()
    return _jsonb_field(parameters) + struct.pack(">i", len(digest)) + digest


def _jsonb_field(value: Any) -> bytes:
    data = b"\x01" + orjson.dumps(value)  # jsonb binary format: version 1, then the JSON text
    return struct.pack(">i", len(data)) + data


def copy_encoded_results(conn: Connection, chunks: Iterable[bytes]) -> int:
    """Stream encoded result rows into crypto_backtest_results with one COPY; returns rows written.

    `chunks` may be a generator that yields while the rows are still being
    computed: the server stores them as they come, inside the caller's transaction.
    """
    cur = conn.connection.driver_connection.cursor()
    try:
        with cur.copy(_COPY_RESULTS) as copy:
            copy.write(_COPY_HEADER)
            for chunk in chunks:
                if chunk:
                    copy.write(chunk)
            copy.write(_COPY_TRAILER)
        return cur.rowcount
    finally:
        cur.close()


# errors that follow from the data alone, so a stored one answers a repeated request as well as a result does
CACHEABLE_ERRORS = ("insufficient_data", "invalid_price_data", "no_data")


def find_stored_results(conn: Connection, strategy_id: int, parameters: Mapping[str, Any], span: Span,
                        versions: Mapping[int, int]) -> dict[int, dict[str, Any]]:
    """Stored results for these cryptos at these data versions, same strategy, parameters and span.

    Keyed by crypto id; each is the result's stored part (metrics, candles,
    first/last time as epoch seconds, data_version, calculation_time_ms,
    error). The newest row wins when several match. Results lost to the
    machinery (worker_lost, timeout, internal_error) never answer.
    """
    if not versions:
        return {}
    start, end = span
    sql = (
        "SELECT k.crypto_id, r.* FROM unnest(%(ids)s::integer[], %(versions)s::bigint[]) "
        "AS k(crypto_id, data_version) CROSS JOIN LATERAL ("
        "SELECT r.id AS result_id, r.data_version, r.candles, "
        "extract(epoch FROM r.first_time)::bigint AS first_time, "
        "extract(epoch FROM r.last_time)::bigint AS last_time, "
        f"{', '.join('r.' + c for c in METRIC_COLUMNS)}, r.calculation_time_ms, r.error "
        "FROM crypto_backtest_results r "
        "WHERE r.strategy_id = %(strategy)s AND r.parameters_hash = %(hash)s AND r.crypto_id = k.crypto_id "
        "AND r.data_version = k.data_version "
        "AND r.span_start IS NOT DISTINCT FROM to_timestamp(%(start)s::double precision) "
        "AND r.span_end IS NOT DISTINCT FROM to_timestamp(%(end)s::double precision) "
        "AND (r.error IS NULL OR r.error->>'code' = ANY(%(cacheable)s::text[])) "
        "ORDER BY r.id DESC LIMIT 1) r")
    args = {"ids": list(versions), "versions": list(versions.values()), "strategy": int(strategy_id),
            "hash": parameters_hash(parameters), "start": start, "end": end, "cacheable": list(CACHEABLE_ERRORS)}
    # never as a prepared statement: after five runs PostgreSQL may switch it to a generic plan, which for
    # this join was ~30x slower (0.36 s against 0.01 s for 211 cryptos)
    with conn.connection.driver_connection.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, args, prepare=False).fetchall()
    return {int(r["crypto_id"]): dict(r) for r in rows}


# ---- grid results (migration 0013): one row per crypto and grid ---------------------------

def settings_hash(parameter_sets: Sequence[Mapping[str, Any]]) -> str:
    """Stable SHA-256 of a grid's ordered list of settings (sorted keys), the cache key of its rows."""
    return hashlib.sha256(orjson.dumps([dict(p) for p in parameter_sets], option=orjson.OPT_SORT_KEYS)).hexdigest()


_GRID_COLUMNS = ("batch_id", "strategy_id", "crypto_id", "settings_hash", "span_start", "span_end", "data_version",
                 "candles", "first_time", "last_time", "stats", "errors", "crypto_error", "calculation_time_ms")
_GRID_TYPES = ("uuid", "int4", "int4", "text", "timestamptz", "timestamptz", "int8", "int4", "timestamptz",
               "timestamptz", "bytea", "jsonb", "jsonb", "float8")
_GRID_READ = ("g.id AS grid_result_id, g.crypto_id, g.data_version, g.candles, "
              "extract(epoch FROM g.first_time)::bigint AS first_time, "
              "extract(epoch FROM g.last_time)::bigint AS last_time, g.stats, g.errors, g.crypto_error, "
              "g.calculation_time_ms")


def _timestamp(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(int(epoch), tz=timezone.utc)


def save_grid_rows(conn: Connection, batch_id: str, strategy_id: int, settings_key: str, span: Span,
                   rows: Iterable[Mapping[str, Any]]) -> int:
    """COPY a grid's per-crypto rows (crypto_id, data_version, candles, first_time/last_time as epoch seconds,
    stats as bytes, errors, crypto_error, calculation_time_ms) inside the caller's transaction."""
    cur = conn.connection.driver_connection.cursor()
    count = 0
    try:
        # binary: the stats go as they are (text COPY would hex-escape every byte, ~0.4 s for a 211 x 1,000 grid)
        with cur.copy(f"COPY grid_results ({', '.join(_GRID_COLUMNS)}) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.set_types(_GRID_TYPES)
            batch_uuid = uuid.UUID(batch_id)
            for r in rows:
                copy.write_row((batch_uuid, int(strategy_id), int(r["crypto_id"]), settings_key, _timestamp(span[0]),
                                _timestamp(span[1]), r["data_version"], int(r["candles"]),
                                _timestamp(r["first_time"]), _timestamp(r["last_time"]), r["stats"],
                                Jsonb({str(k): v for k, v in r["errors"].items()}),
                                None if r["crypto_error"] is None else Jsonb(r["crypto_error"]),
                                float(r["calculation_time_ms"])))
                count += 1
    finally:
        cur.close()
    return count


def find_grid_rows(conn: Connection, strategy_id: int, settings_key: str, span: Span,
                   versions: Mapping[int, int]) -> dict[int, dict[str, Any]]:
    """Stored grid rows for these cryptos at these data versions, same strategy, settings and span (newest wins)."""
    if not versions:
        return {}
    sql = (
        "SELECT k.crypto_id AS key_id, g.* FROM unnest(%(ids)s::integer[], %(versions)s::bigint[]) "
        "AS k(crypto_id, data_version) CROSS JOIN LATERAL ("
        f"SELECT {_GRID_READ} FROM grid_results g "
        "WHERE g.strategy_id = %(strategy)s AND g.settings_hash = %(hash)s AND g.crypto_id = k.crypto_id "
        "AND g.data_version = k.data_version "
        "AND g.span_start IS NOT DISTINCT FROM to_timestamp(%(start)s::double precision) "
        "AND g.span_end IS NOT DISTINCT FROM to_timestamp(%(end)s::double precision) "
        "ORDER BY g.id DESC LIMIT 1) g")
    args = {"ids": list(versions), "versions": list(versions.values()), "strategy": int(strategy_id),
            "hash": settings_key, "start": span[0], "end": span[1]}
    with conn.connection.driver_connection.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, args, prepare=False).fetchall()  # no generic plan: see find_stored_results
    return {int(r["key_id"]): dict(r) for r in rows}


def batch_grid_rows(conn: Connection, batch_id: str, reused_ids: Sequence[int]) -> list[dict[str, Any]]:
    """A grid batch's rows (its own and the stored ones it answered from) with each crypto's symbol, name,
    interval, in crypto-id order."""
    rows = conn.execute(text(
        f"SELECT {_GRID_READ}, c.symbol, c.name, c.interval FROM grid_results g "
        "JOIN cryptocurrencies c ON c.id = g.crypto_id "
        "WHERE g.batch_id = CAST(:b AS uuid) OR g.id = ANY(CAST(:reused AS bigint[])) ORDER BY g.crypto_id, g.id"),
        {"b": batch_id, "reused": [int(i) for i in reused_ids]}).mappings()
    return [dict(r) for r in rows]


# ---- batches -----------------------------------------------------------------------------

def insert_batch(conn: Connection, batch_id: str, kind: str, strategy_id: int, summary: Mapping[str, Any],
                 crypto_ids: Sequence[int], reused_result_ids: Sequence[int] = (),
                 parameter_sets: Sequence[Mapping[str, Any]] | None = None,
                 results: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Record a stored batch: its answer's summary, the cryptos it covers, the stored rows it answered from
    (grid_results ids for a grid), a grid's settings in the order of its rows' stats, and the results of a
    batch that has no result rows (a Monte Carlo, migration 0014)."""
    conn.execute(text(
        "INSERT INTO backtest_batches (batch_id, kind, strategy_id, summary, crypto_ids, reused_result_ids, "
        "parameter_sets, results) VALUES (:b, :k, :s, CAST(:summary AS jsonb), :c, :r, CAST(:sets AS jsonb), "
        "CAST(:results AS jsonb))"),
        {"b": batch_id, "k": kind, "s": int(strategy_id), "summary": orjson.dumps(summary).decode(),
         "c": [int(i) for i in crypto_ids], "r": [int(i) for i in reused_result_ids],
         "sets": None if parameter_sets is None else orjson.dumps(list(parameter_sets)).decode(),
         "results": None if results is None else orjson.dumps(list(results)).decode()})


def list_batches(conn: Connection, limit: int, after: tuple[str, str] | None = None, strategy_id: int | None = None,
                 crypto_id: int | None = None, since: str | None = None) -> list[dict[str, Any]]:
    """Batches newest first (created_at, then batch_id, descending), after the cursor (created_at, batch_id)."""
    where, args = [], {"limit": int(limit)}
    if after is not None:
        where.append("(created_at, batch_id) < (CAST(:at AS timestamptz), CAST(:bid AS uuid))")
        args.update(at=after[0], bid=after[1])
    if strategy_id is not None:
        where.append("strategy_id = :strategy")
        args["strategy"] = int(strategy_id)
    if crypto_id is not None:
        where.append("crypto_ids @> ARRAY[CAST(:cid AS integer)]")
        args["cid"] = int(crypto_id)
    if since is not None:
        where.append("created_at >= CAST(:since AS timestamptz)")
        args["since"] = since
    rows = conn.execute(text(
        "SELECT batch_id::text AS batch_id, kind, strategy_id, summary, cardinality(crypto_ids) AS cryptos, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at "
        "FROM backtest_batches" + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY created_at DESC, batch_id DESC LIMIT :limit"), args).mappings()
    return [dict(r) for r in rows]


def get_batch(conn: Connection, batch_id: str) -> dict[str, Any] | None:
    """One batch's record, or None."""
    row = conn.execute(text(
        "SELECT batch_id::text AS batch_id, kind, strategy_id, summary, reused_result_ids, parameter_sets, results, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at "
        "FROM backtest_batches WHERE batch_id = CAST(:b AS uuid)"), {"b": batch_id}).mappings().first()
    return dict(row) if row else None


def batch_result_rows(conn: Connection, batch_id: str, reused_result_ids: Sequence[int]) -> list[dict[str, Any]]:
    """A batch's result rows (its own and those it answered from), with each crypto's symbol, name, interval."""
    rows = conn.execute(text(
        "SELECT r.crypto_id, c.symbol, c.name, c.interval, r.parameters, r.data_version, r.candles, "
        "extract(epoch FROM r.first_time)::bigint AS first_time, extract(epoch FROM r.last_time)::bigint AS last_time, "
        f"{', '.join('r.' + c for c in METRIC_COLUMNS)}, r.calculation_time_ms, r.error "
        "FROM crypto_backtest_results r JOIN cryptocurrencies c ON c.id = r.crypto_id "
        "WHERE r.batch_id = CAST(:b AS uuid) OR r.id = ANY(CAST(:reused AS bigint[])) ORDER BY r.id"),
        {"b": batch_id, "reused": [int(i) for i in reused_result_ids]}).mappings()
    return [dict(r) for r in rows]


def count_results(conn: Connection, batch_id: str | None = None) -> int:
    """Stored result rows (of one batch when batch_id is given)."""
    if batch_id is None:
        return int(conn.execute(text("SELECT count(*) FROM crypto_backtest_results")).scalar_one())
    return int(conn.execute(text("SELECT count(*) FROM crypto_backtest_results WHERE batch_id = :b"),
                            {"b": batch_id}).scalar_one())


# ---- idempotency keys --------------------------------------------------------------------

def try_lock_idempotency_key(conn: Connection, key: str) -> bool:
    """Take the session lock that says "a request with this key is running now"; False if another holds it.

    A session-level advisory lock, so it ends with the session that took it:
    a server process that dies mid-request (SIGKILL, OOM) frees its keys at
    once, where a row could only say "running" until some timeout.
    """
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), {"k": key}).scalar_one())


def unlock_idempotency_key(conn: Connection, key: str) -> None:
    """Give the key's session lock back (the request is over)."""
    conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": key})


def claim_idempotency_key(conn: Connection, key: str, request_hash: str) -> dict[str, Any] | None:
    """Claim `key` for a new request; None when claimed, else the existing (done) row.

    Called with the key's session lock held, so a 'running' row is one whose
    request died: it is taken over.
    """
    claimed = conn.execute(text(
        "INSERT INTO idempotency_keys (key, request_hash, state) VALUES (:k, :h, 'running') "
        "ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now() "
        "WHERE idempotency_keys.state = 'running' "
        "RETURNING key"), {"k": key, "h": request_hash}).first()
    if claimed:
        return None
    return find_idempotency_key(conn, key)


def find_idempotency_key(conn: Connection, key: str) -> dict[str, Any] | None:
    """The key's row (request hash, state, stored response), or None."""
    row = conn.execute(text("SELECT request_hash, state, response_status, response_body FROM idempotency_keys "
                            "WHERE key = :k"), {"k": key}).mappings().first()
    return dict(row) if row else None


def complete_idempotency_key(conn: Connection, key: str, status: int, body: bytes) -> None:
    """Store the response to replay for `key`."""
    conn.execute(text("UPDATE idempotency_keys SET state = 'done', response_status = :s, response_body = :b, "
                      "completed_at = now() WHERE key = :k"), {"k": key, "s": status, "b": body})


def release_idempotency_key(conn: Connection, key: str) -> None:
    """Forget a claim whose request failed, so the client may retry with the same key."""
    conn.execute(text("DELETE FROM idempotency_keys WHERE key = :k AND state = 'running'"), {"k": key})


# ---- readiness ---------------------------------------------------------------------------

def schema_status(conn: Connection) -> dict[str, Any]:
    """Where the database's migrations stand relative to migrations/ head."""
    current, head = current_revision(conn), head_revision()
    return {"current_revision": current, "head_revision": head, "at_head": current == head}

