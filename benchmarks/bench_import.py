"""Import speed: a 1,000,000-row candle CSV through POST /api/crypto/prices vs a naive row-by-row INSERT.

Both load the same synthetic hourly candles into fresh databases on the same
server; the upload goes through gunicorn on loopback (validation, interval
detection, COPY upsert in one transaction), the naive loader does one INSERT
per row in one transaction. Prints rows per second for each and the ratio.

    .venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--naive-rows 50000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import gunicorn_server, server_url  # noqa: E402

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from api.config import Settings  # noqa: E402
from api.db import migrate  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.demo_data import generate_demo_cryptos  # noqa: E402


def fresh_database(server: str) -> str:
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(db_config_for(url, Settings()), pool_size=1)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def drop_database(server: str, url: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def candle_csv(rows: int, path: Path) -> pd.DataFrame:
    demo = generate_demo_cryptos(1, rows, seed=5, interval="1h")[0]
    frame = pd.DataFrame({"timestamp": pd.to_datetime(demo.times).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "open": demo.open, "high": demo.high, "low": demo.low, "close": demo.close,
                          "volume": demo.volume})
    frame.to_csv(path, index=False, float_format="%.17g")
    return frame


def upload(base: str, path: Path) -> dict:
    """POST the file as multipart, streamed from disk in 1 MB pieces as curl -F does."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with open(path, "rb") as f:
            while piece := f.read(1 << 20):
                yield piece
        yield tail

    req = urllib.request.Request(base + "/api/crypto/prices", data=body(),
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                          "Content-Length": str(len(head) + path.stat().st_size + len(tail))})
    with urllib.request.urlopen(req, timeout=600) as resp:
        import json
        return json.loads(resp.read())


def naive_insert(url: str, frame: pd.DataFrame) -> None:
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        cid = conn.execute("INSERT INTO cryptocurrencies (symbol, name) VALUES ('NAIVE', 'naive') "
                           "RETURNING id").fetchone()[0]
        for row in frame.itertuples(index=False):
            conn.execute("INSERT INTO crypto_prices (crypto_id, time, open, high, low, close, volume) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", (cid, row.timestamp, row.open, row.high, row.low,
                                                                 row.close, row.volume))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--naive-rows", type=int, default=50_000, help="rows for the row-by-row loader (scaled)")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    server = server_url(args.database_url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BENCHUSDT.csv"
        frame = candle_csv(args.rows, path)
        size_mb = path.stat().st_size / 2**20
        url = fresh_database(server)
        try:
            with gunicorn_server(url, workers=1) as base:
                t0 = time.perf_counter()
                report = upload(base, path)
                api_s = time.perf_counter() - t0
        finally:
            drop_database(server, url)
        url = fresh_database(server)
        try:
            t0 = time.perf_counter()
            naive_insert(url, frame.head(args.naive_rows))
            naive_s = time.perf_counter() - t0
        finally:
            drop_database(server, url)
    api_rate, naive_rate = report["rows_stored"] / api_s, args.naive_rows / naive_s
    print(f"file: {args.rows:,} hourly candles, {size_mb:.0f} MB CSV; stored {report['rows_stored']:,}, "
          f"rejected {report['rows_rejected']}")
    print(f"  POST /api/crypto/prices (gunicorn, loopback): {api_s:6.2f} s  {api_rate:>10,.0f} rows/s")
    print(f"  naive row-by-row INSERT ({args.naive_rows:,} rows): {naive_s:6.2f} s  {naive_rate:>10,.0f} rows/s")
    print(f"  ratio: {api_rate / naive_rate:.0f}x")


if __name__ == "__main__":
    main()
