"""The one place that creates SQLAlchemy engines.

Every engine gets server-side timeouts so a stuck query or a held lock
surfaces as an error instead of a hung request. Worker processes call
`worker_engine`, which builds one engine per process (keyed by pid) so a
forked child never touches a connection its parent opened.
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


_WORKER_ENGINES: dict[tuple[int, str], Engine] = {}


def worker_engine(db_config: dict[str, Any]) -> Engine:
    """This process's own engine for db_config, created on first use.

    Keyed by pid: after a fork the child sees the parent's cache entries but
    never uses them, because its pid differs.
    """
    key = (os.getpid(), db_config["url"])
    engine = _WORKER_ENGINES.get(key)
    if engine is None:
        engine = make_engine(db_config, pool_size=1, application_name="crypto-backtest-worker")
        _WORKER_ENGINES[key] = engine
    return engine
