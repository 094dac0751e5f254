"""What reading a batch's candles costs per set of fields, isolated from the engine.

Times what the sequential batch does before any strategy runs: every crypto's
series through the read-ahead (`reading_ahead` over the batch's cryptos, then
`take_candles` per crypto, on one autocommit worker connection), for the
field sets {close}, {close, open}, {close, open, high, low} and all six.
Each round runs every field set once, in turn; one warm-up round, then
`--repeats` timed rounds; medians, with each set's ratio to {close}. With
`--grouped`, each set's rounds run back to back instead (its own warm-up):
interleaved, a set that outgrows shared_buffers evicts the others' pages,
which is what a server running mixed batches sees; grouped shows each set
with the cache to itself. It prints; it asserts nothing.

The datasets are synthetic (api.demo_data, seed 42) in databases of this
benchmark's own (`bench_reads_<interval>_<n>x<candles>`), created and loaded
here and dropped at the end unless --keep:

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_candle_reads.py [--workload daily|hourly|all] [--hourly-cryptos 211]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from api.config import Settings  # noqa: E402
from api.db import migrate  # noqa: E402
from api.db import repository as repo  # noqa: E402
from api.db.connection import _connect, db_config_for, make_engine  # noqa: E402
from api.services.demo_loader import seed_demo  # noqa: E402
from api.services.read_ahead import reading_ahead, take_candles  # noqa: E402

FIELD_SETS = (("close",), ("close", "open"), ("close", "open", "high", "low"), repo.CANDLE_FIELDS)


def make_dataset(server: str, n_cryptos: int, n_candles: int, interval: str) -> tuple[str, str]:
    """A fresh database of this benchmark's own holding the dataset; (url, name)."""
    name = f"bench_reads_{interval}_{n_cryptos}x{n_candles}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(db_config_for(url, Settings()), pool_size=1)
    try:
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed_demo(engine, n_cryptos, n_candles, 42, interval=interval, only_if_empty=False, progress=False)
        print(f"  loaded {n_cryptos} x {n_candles:,} {interval} candles in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    finally:
        engine.dispose()
    vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()
    return url, name


def drop_dataset(server: str, name: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def read_all(dbapi_conn, task_args: list[tuple], fields: tuple[str, ...]) -> int:
    """Every crypto's series as the sequential batch reads it; the payload bytes handed out."""
    total = 0
    with reading_ahead(task_args):
        for (crypto,) in task_args:
            series = take_candles(dbapi_conn, crypto["id"], fields)
            total += sum(getattr(series, f).nbytes for f in fields)
    return total


def measure(url: str, repeats: int, grouped: bool = False) -> dict[tuple[str, ...], tuple[float, int]]:
    engine = make_engine(db_config_for(url, Settings()), pool_size=1)
    with engine.connect() as conn:
        task_args = [(c,) for c in repo.list_cryptos_with_data(conn)]
    engine.dispose()
    dbapi_conn = _connect(db_config_for(url, Settings()))  # a worker's own connection, as the batch uses
    times: dict[tuple[str, ...], list[float]] = {f: [] for f in FIELD_SETS}
    payload: dict[tuple[str, ...], int] = {}
    try:
        rounds = [(r, f) for f in FIELD_SETS for r in range(repeats + 1)] if grouped else \
            [(r, f) for r in range(repeats + 1) for f in FIELD_SETS]
        for round_, fields in rounds:  # round 0 warms the connection and the server's cache
            started = time.perf_counter()
            payload[fields] = read_all(dbapi_conn, task_args, fields)
            if round_:
                times[fields].append(time.perf_counter() - started)
    finally:
        dbapi_conn.close()
    return {f: (statistics.median(times[f]), payload[f]) for f in FIELD_SETS}


def report(title: str, stats: dict[tuple[str, ...], tuple[float, int]]) -> None:
    base = stats[("close",)][0]
    print(f"\n{title}")
    print(f"  {'fields':<28} {'median s':>9} {'MB read':>8} {'ratio to {close}':>17}")
    for fields, (seconds, nbytes) in stats.items():
        name = "all six" if fields == repo.CANDLE_FIELDS else "{" + ", ".join(fields) + "}"
        print(f"  {name:<28} {seconds:>9.3f} {nbytes / 1e6:>8.1f} {seconds / base:>16.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["daily", "hourly", "all"], default="all")
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828)
    ap.add_argument("--hourly-cryptos", type=int, default=211)
    ap.add_argument("--hourly-candles", type=int, default=43_800)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--grouped", action="store_true", help="each field set's rounds back to back, not interleaved")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's databases")
    ap.add_argument("--database-url", help="server to use (default BENCH_DATABASE_URL, DATABASE_URL, embedded)")
    args = ap.parse_args()
    server = server_url(args.database_url)
    shapes = {"daily": (args.cryptos, args.candles, "1d"), "hourly": (args.hourly_cryptos, args.hourly_candles, "1h")}
    print(f"read-ahead + take_candles over every crypto, one worker connection; median of {args.repeats} rounds, "
          f"{'grouped by field set' if args.grouped else 'field sets interleaved'}")
    for workload in (["daily", "hourly"] if args.workload == "all" else [args.workload]):
        n, candles, interval = shapes[workload]
        url, name = make_dataset(server, n, candles, interval)
        try:
            report(f"{workload}: {n} cryptos x {candles:,} {interval} candles", measure(url, args.repeats, args.grouped))
        finally:
            if not args.keep:
                drop_dataset(server, name)


if __name__ == "__main__":
    main()
