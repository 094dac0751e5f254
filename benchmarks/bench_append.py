"""What one new candle costs to store, by the length of the crypto's series (issue 14's scale study).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_append.py

A crypto's candles live packed in one row of crypto_candle_series (a bytea per field), kept in step with
crypto_prices by triggers. Appending a candle extends each bytea, which PostgreSQL writes as a whole new value:
the cost grows with the series. This stores one synthetic crypto of 1 and of 10 years of hourly candles, appends
30 candles one transaction each, and prints the median time per append and the series table's size after.
Its databases are dropped at the end.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.bench_support import server_url  # noqa: E402
from api.config import Settings  # noqa: E402
from api.db import migrate  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.services.demo_loader import seed_demo  # noqa: E402

APPENDS = 30


def probe(server: str, years: int) -> tuple[float, int, int]:
    """(median seconds per appended candle, series table bytes after, candles) for `years` of hourly candles."""
    name = f"bench_append_{years}y"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(db_config_for(url, Settings()), pool_size=1)
    try:
        migrate.upgrade(engine)
        seed_demo(engine, 1, 8_760 * years, 1, interval="1h", only_if_empty=False)
        with engine.connect() as conn:
            crypto_id, last = conn.execute(text("SELECT crypto_id, last_time FROM crypto_candle_series")).one()
        took = []
        for i in range(1, APPENDS + 1):
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO crypto_prices (crypto_id, time, open, high, low, close, volume) "
                                  "VALUES (:c, :t + make_interval(hours => :i), 1, 1, 1, 1, 1)"),
                             {"c": crypto_id, "t": last, "i": i})
            took.append(time.perf_counter() - started)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_total_relation_size('crypto_candle_series')")).scalar_one()
            count = conn.execute(text("SELECT candle_count FROM crypto_candle_series")).scalar_one()
        return statistics.median(took), size, count
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    server = server_url(args.database_url)
    print("| series | candles | one appended candle, ms (median of 30) | series table after 30 appends, MB |")
    print("| --- | ---: | ---: | ---: |")
    for years in (1, 10):
        seconds, size, count = probe(server, years)
        print(f"| {years} y hourly | {count:,} | {seconds * 1000:.2f} | {size / 2**20:.1f} |")


if __name__ == "__main__":
    main()
