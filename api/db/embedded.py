"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is given.

pgserver ships PostgreSQL binaries in a wheel, so a fresh machine with only
Python can run the service. The server keeps running after this process
exits (cleanup_mode=None) so gunicorn workers, the CLI and a later
`make run` all share one data folder; `make stop-db` stops it.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded_postgres(data_root: Path) -> str:
    """Start (or attach to) the embedded server under data_root; return a SQLAlchemy URL."""
    import pgserver  # imported lazily: only needed when no DATABASE_URL is set

    data_root.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_root / "pg", cleanup_mode=None)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    log.info("embedded PostgreSQL running with data in %s", data_root / "pg")
    return to_sqlalchemy_url(uri)


def stop_embedded_postgres(data_root: Path) -> bool:
    """Stop the embedded server if one runs under data_root; True if one was stopped."""
    import subprocess

    import pgserver

    pgdata = data_root / "pg"
    if not (pgdata / "postmaster.pid").exists():
        return False
    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast"]
    try:
        import pwd
        import os

        if os.geteuid() == 0:  # pgserver runs the server as its own user when we are root
            pwd.getpwnam("pgserver")
            cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(cmd)]
    except KeyError:
        pass
    return subprocess.run(cmd, check=False).returncode == 0


def to_sqlalchemy_url(url: str) -> str:
    """Make a libpq-style URL name the psycopg 3 driver for SQLAlchemy."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
