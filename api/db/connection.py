"""The one place that creates SQLAlchemy engines.

Every engine gets server-side timeouts so a stuck query or a held lock
surfaces as an error instead of a hung request. Worker processes (and the
threads that run a batch in-process) call `worker_connection`, which opens one
connection per thread and process and keeps it, so a forked child never
touches a connection its parent opened and nobody pays a connect per crypto.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from api.config import Settings
from api.db.embedded import start_embedded_postgres, to_sqlalchemy_url


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when given, else the embedded PostgreSQL (started on demand)."""
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    return start_embedded_postgres(settings.pgserver_dir)


def db_config_for(url: str, settings: Settings) -> dict[str, Any]:
    """The picklable description of the database that worker processes receive."""
    return {
        "url": url,
        "statement_timeout_ms": settings.statement_timeout_ms,
        "lock_timeout_ms": settings.lock_timeout_ms,
    }


def make_engine(db_config: dict[str, Any], *, pool_size: int = 5, application_name: str = "crypto-backtest") -> Engine:
    """An engine whose every connection carries statement and lock timeouts."""
    options = (
        f"-c statement_timeout={int(db_config.get('statement_timeout_ms', 120_000))} "
        f"-c lock_timeout={int(db_config.get('lock_timeout_ms', 5_000))}"
    )
    return create_engine(
        to_sqlalchemy_url(db_config["url"]),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"options": options, "application_name": application_name, "connect_timeout": 5},
    )


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


class _Holder:
    """The one connection a thread (or a lent block) owns for a database URL."""

    def __init__(self, conn: Any = None) -> None:
        self.conn = conn


class _ThreadConnections(threading.local):
    """Each thread's own connections, and the pid they were opened in.

    Per thread: pool workers are single-threaded, so this is one per worker
    process. Per pid: a forked child inherits the forking thread's values and
    must not use them (psycopg never closes a connection it did not open in
    this process, so leaving them be is safe).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.by_url: dict[str, _Holder] = {}


_THREAD_CONNECTIONS = _ThreadConnections()
_LENT: contextvars.ContextVar[tuple[str, _Holder] | None] = contextvars.ContextVar("lent_connection", default=None)
_IDLE: dict[tuple[int, str], list[Any]] = {}  # (pid, url) -> connections no run holds
_IDLE_LOCK = threading.Lock()


@contextlib.contextmanager
def lent_connection(db_config: dict[str, Any]) -> Iterator[None]:
    """Inside the block, worker_connection() returns a connection that this block alone uses.

    For batches run in a server process, where request threads come and go:
    the connection comes from this process's idle ones (or is opened) and goes
    back to them afterwards, so a process holds as many as it runs batches at
    once, not one per thread it ever had.
    """
    key = (os.getpid(), db_config["url"])
    with _IDLE_LOCK:
        idle = _IDLE.get(key) or []
        holder = _Holder(idle.pop() if idle else None)
    token = _LENT.set((db_config["url"], holder))
    try:
        yield
    finally:
        _LENT.reset(token)
        conn = holder.conn
        if conn is not None and _reusable(conn):
            with _IDLE_LOCK:
                _IDLE.setdefault(key, []).append(conn)
        elif conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _reusable(conn: Any) -> bool:
    from psycopg.pq import TransactionStatus

    return not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE


def worker_connection(db_config: dict[str, Any], fresh: bool = False) -> Any:
    """The caller's own psycopg connection: the one lent to this block, else this thread's.

    Opened on first use and kept. Autocommit, because workers only read. A
    connection known to be broken, or `fresh=True` (the caller saw it fail),
    is replaced by a new one.
    """
    url = db_config["url"]
    lent = _LENT.get()
    if lent is not None and lent[0] == url:
        holder = lent[1]
    else:
        mine = _THREAD_CONNECTIONS
        if mine.pid != os.getpid():
            mine.pid, mine.by_url = os.getpid(), {}
        holder = mine.by_url.setdefault(url, _Holder())
    conn = holder.conn
    if conn is not None and not fresh and not conn.closed and not conn.broken:
        return conn
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()
    holder.conn = _connect(db_config)
    return holder.conn


_WORKER_URL: str | None = None  # a Dask worker's own DATABASE_URL (its network's name for the server), when set


def use_worker_database_url(url: str) -> None:
    """Connect this process's workers through `url` instead of the URL the service sent with the task: a
    worker on another host may reach the database by another name. Set by the Dask worker plugin."""
    global _WORKER_URL
    _WORKER_URL = to_sqlalchemy_url(url)


def _connect(db_config: dict[str, Any]) -> Any:
    import psycopg

    options = (f"-c statement_timeout={int(db_config.get('statement_timeout_ms', 120_000))} "
               f"-c lock_timeout={int(db_config.get('lock_timeout_ms', 5_000))}")
    return psycopg.connect(_libpq_url(_WORKER_URL or db_config["url"]), autocommit=True, options=options,
                           application_name="crypto-backtest-worker", connect_timeout=5)


def connection_lost(exc: BaseException, conn: Any) -> bool:
    """True when exc means the connection itself is gone (server restart, backend terminated,
    network cut) rather than a failing query on a healthy connection (timeout, lock)."""
    import psycopg

    if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    return conn is None or conn.closed or conn.broken


def is_database_error(exc: BaseException) -> bool:
    """True for failures of the database or the way to it, which say nothing about the data."""
    import psycopg

    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    # 57xxx operator intervention / query canceled, 55P03 lock_not_available, 53xxx resources, 08xxx connection
    return sqlstate.startswith(("57", "53", "08")) or sqlstate == "55P03"
