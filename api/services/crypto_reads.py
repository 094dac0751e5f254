"""How a batch worker reads one crypto's candles, and what a failed read becomes (shared by every kind of batch).

A worker reads on its own process's connection (re-opened once if it died
since its last use), only the fields its runs need, then keeps the candles
inside the crypto's span. A failure is either the database's (DATABASE_FAILED:
the whole batch answers 503 and stores nothing) or the crypto's own
(internal_error, logged).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from api.db import repository as repo
from api.db.connection import connection_lost, is_database_error, worker_connection
from api.engine import get_strategy, required_fields
from api.services.read_ahead import take_candles
from api.services.selection import span_of, within_span

log = logging.getLogger(__name__)

# error code of a crypto whose read failed because the database did (never stored, never returned:
# the whole batch answers DatabaseUnavailable instead)
DATABASE_FAILED = "database_unavailable"

NO_CANDLES_IN_SPAN = "no candles of this cryptocurrency in the selected span (start, end)"


def failure_code(crypto: Mapping[str, Any], exc: Exception) -> str:
    """DATABASE_FAILED when the database failed (the batch answers 503), else internal_error (logged)."""
    if is_database_error(exc):
        log.warning("database failed while reading %s: %s", crypto.get("symbol"), exc)
        return DATABASE_FAILED
    log.exception("backtest of %s failed", crypto.get("symbol"))
    return "internal_error"


def inside_span(crypto: Mapping[str, Any], prices: repo.PriceSeries) -> repo.PriceSeries:
    """The candles inside the crypto's span (all of them without one)."""
    start, end = span_of(crypto)
    return prices if start is None and end is None else within_span(prices, start, end)


def span_missed(prices: repo.PriceSeries, inside: repo.PriceSeries) -> bool:
    """The span holds none of a crypto's candles (a crypto without any is no_data for its own reason)."""
    return len(inside) == 0 and len(prices) > 0


def fields_for(strategy_id: int, parameter_sets: Sequence[Mapping[str, Any]], with_trades: bool) -> frozenset[str]:
    """The candle fields (names of repo.CANDLE_FIELDS) a run of this strategy under these settings reads.

    Reading only those keeps a closes-only run (RSI, close fills, no stops) as cheap as when only closes
    were stored: all six fields are ~3x the read time of daily closes (benchmarks/bench_candle_reads.py).
    """
    return required_fields(get_strategy(strategy_id), parameter_sets, with_trades)


def read_crypto(crypto: Mapping[str, Any], db_config: dict[str, Any], fields: frozenset[str]) -> repo.PriceSeries:
    """A crypto's candles (only `fields`), on a connection that is checked by use and re-opened once if it died."""
    conn = worker_connection(db_config)
    try:
        return take_candles(conn, crypto["id"], fields)
    except Exception as exc:
        if not connection_lost(exc, conn):
            raise
    conn = worker_connection(db_config, fresh=True)
    return take_candles(conn, crypto["id"], fields)
