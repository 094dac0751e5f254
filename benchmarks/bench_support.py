"""Shared plumbing for the benchmarks: a PostgreSQL to run on, datasets, a gunicorn to talk to.

Datasets are synthetic (api.demo_data) and live in their own databases,
named after their shape (`bench_1d_211x1828_s42`), created and loaded once
and reused by later runs, so a benchmark run times the service, not the load.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from api.config import Settings  # noqa: E402
from api.db import migrate  # noqa: E402
from api.db import repository as repo  # noqa: E402
from api.db.connection import db_config_for, make_engine, resolve_database_url  # noqa: E402
from api.services.demo_loader import seed_demo  # noqa: E402


def server_url(explicit: str | None) -> str:
    """The server to benchmark on: --database-url, BENCH_DATABASE_URL, DATABASE_URL, else the embedded one."""
    url = explicit or os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return resolve_database_url(Settings(database_url=url))


def dataset_url(server: str, n_cryptos: int, n_candles: int, interval: str, seed: int = 42,
                prefix: str | None = None) -> str:
    """A database holding exactly this synthetic dataset (created and loaded on first use).

    Stored results of earlier runs are emptied, so every run writes into the same small table.
    `prefix` starts the database's name, so a benchmark can keep its datasets apart from others'; by
    default it names the schema revision, so checkouts of different revisions never share (and migrate)
    one dataset, and before/after runs can go side by side.
    """
    prefix = prefix or f"bench_r{migrate.head_revision()}"
    name = f"{prefix}_{interval}_{n_cryptos}x{n_candles}_s{seed}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(db_config_for(url, Settings()), pool_size=1)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = repo.count_prices(conn)
        if rows != n_cryptos * n_candles:
            print(f"loading dataset {name} ({n_cryptos} x {n_candles} {interval} candles, once)...", file=sys.stderr)
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE crypto_backtest_results, crypto_prices, cryptocurrencies CASCADE"))
            seed_demo(engine, n_cryptos, n_candles, seed, interval=interval, only_if_empty=False, progress=True)
            vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
            with vacuum.connect() as conn:
                conn.execute(text("VACUUM ANALYZE crypto_prices"))
            vacuum.dispose()
        with engine.begin() as conn:  # results of earlier benchmark runs would only slow the writes down
            conn.execute(text("TRUNCATE crypto_backtest_results"))
    finally:
        engine.dispose()
    return url


def drop_dataset(server: str, url: str) -> None:
    """Drop a dataset database made by `dataset_url` (its engines must be disposed of first)."""
    name = make_url(url).database
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """A running gunicorn's base URL (a plain str to its users) that also knows the master's pid."""

    pid: int


@contextlib.contextmanager
def gunicorn_server(database_url: str, workers: int = 2) -> Iterator[ServerURL]:
    """gunicorn serving the app on a loopback port; yields its base URL (with .pid)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "HOST": "127.0.0.1",
           "WEB_CONCURRENCY": str(workers), "LOG_LEVEL": "WARNING"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null",
                             "api:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        served = ServerURL(base)
        served.pid = proc.pid
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
