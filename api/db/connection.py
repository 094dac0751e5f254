"""The one place that creates SQLAlchemy engines.

Every engine gets server-side timeouts so a stuck query or a held lock
surfaces as an error instead of a hung request. Worker processes call
`worker_connection`, which opens one connection per process (keyed by pid)
and keeps it, so a forked child never touches a connection its parent opened
and never pays a connect per crypto.
"""
from __future__ import annotations

import os
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


_WORKER_CONNECTIONS: dict[tuple[int, str], Any] = {}


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def worker_connection(db_config: dict[str, Any]) -> Any:
    """This process's own psycopg connection, opened on first use and kept for the process's life.

    Keyed by pid: after a fork the child sees the parent's cache entries but
    never uses them, because its pid differs. Autocommit, because workers only
    read. A connection found broken is replaced once.
    """
    import psycopg

    key = (os.getpid(), db_config["url"])
    conn = _WORKER_CONNECTIONS.get(key)
    if conn is not None and not conn.closed and not conn.broken:
        return conn
    options = (f"-c statement_timeout={int(db_config.get('statement_timeout_ms', 120_000))} "
               f"-c lock_timeout={int(db_config.get('lock_timeout_ms', 5_000))}")
    conn = psycopg.connect(_libpq_url(db_config["url"]), autocommit=True, options=options,
                           application_name="crypto-backtest-worker", connect_timeout=5)
    _WORKER_CONNECTIONS[key] = conn
    return conn
