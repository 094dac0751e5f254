"""Find or start the PostgreSQL the tests use, in DESIGN.md's order.

1. TEST_DATABASE_URL, if set (a server on which we may CREATE DATABASE);
2. a testcontainers PostgreSQL, if a Docker engine answers;
3. an embedded pgserver in a temporary folder, removed at the end.
Each test session then works in its own freshly created database, dropped at the end.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.db.embedded import to_sqlalchemy_url


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """Yield (admin SQLAlchemy URL, how it was found) for a server we may create databases on."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield to_sqlalchemy_url(os.environ["TEST_DATABASE_URL"]), "TEST_DATABASE_URL"
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as pg:
            yield to_sqlalchemy_url(pg.get_connection_url()), "testcontainers"
        return
    # the data folder (~134 MB) goes with the session: "delete" stops the server
    # and removes it, and the temporary folder around it is removed too
    with tempfile.TemporaryDirectory(prefix="btpg-") as root, _runtime_dir(Path(root) / "run"):
        import pgserver

        server = pgserver.get_server(Path(root) / "pg", cleanup_mode="delete")
        try:
            yield to_sqlalchemy_url(server.get_uri()), "pgserver"
        finally:
            server.cleanup()


@contextlib.contextmanager
def _runtime_dir(folder: Path) -> Iterator[None]:
    """XDG_RUNTIME_DIR = `folder` while unset, so pgserver's lock file lands in our temporary folder.

    pgserver keeps a lock file in the user's runtime folder (fixed when pgserver
    is imported); without XDG_RUNTIME_DIR that is <tmp>/runtime-<uid>, which
    would outlive the session.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        yield
        return
    os.environ["XDG_RUNTIME_DIR"] = str(folder)
    try:
        yield
    finally:
        del os.environ["XDG_RUNTIME_DIR"]


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "bt_test") -> Iterator[str]:
    """Create an empty database on the server, yield its URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# each column of crypto_candle_series (0008) and the bytes of one candle's value in it
CANDLE_COLUMNS_SQL = (("times", "int8send(extract(epoch FROM time)::bigint)"), ("opens", "float8send(open)"),
                      ("highs", "float8send(high)"), ("lows", "float8send(low)"), ("closes", "float8send(close)"),
                      ("volumes", "float8send(volume)"))


def assert_candle_series_matches_prices(conn) -> None:
    """The packed candle series is derived state: it must equal what crypto_prices holds, crypto by crypto,
    every column byte for byte."""
    aggregates = ", ".join(f"string_agg({value}, ''::bytea ORDER BY time)" for _, value in CANDLE_COLUMNS_SQL)
    expected = conn.execute(text(
        f"SELECT crypto_id, {aggregates}, min(time), max(time), count(*) "
        "FROM crypto_prices GROUP BY crypto_id ORDER BY crypto_id")).all()
    actual = conn.execute(text(f"SELECT crypto_id, {', '.join(c for c, _ in CANDLE_COLUMNS_SQL)}, first_time, "
                               "last_time, candle_count FROM crypto_candle_series ORDER BY crypto_id")).all()
    assert [tuple(r) for r in actual] == [tuple(r) for r in expected]
