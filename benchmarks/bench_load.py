"""Load on POST /api/crypto/backtest/all: requests per second and p50/p95 latency at 1, 4 and 16 clients.

gunicorn serves the demo-sized dataset (211 x 1,828 daily candles) on a
loopback port; each level runs a bounded number of requests from concurrent
client threads and prints throughput, latency percentiles and the status
codes seen (200, or 429/503 with Retry-After when a server process is busy).
It prints; it asserts nothing. Traffic goes to 127.0.0.1 only.

    .venv/bin/python benchmarks/bench_load.py [--requests 40] [--workers 2] [--clients 1 4 16]
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import dataset_url, gunicorn_server, server_url  # noqa: E402

from api.config import Settings  # noqa: E402 - bench_support put the repository on sys.path

BODY = b'{"strategy_id": 1, "parameters": {}, "use_parallel": "auto"}'


def one_request(url: str) -> tuple[int, float]:
    req = urllib.request.Request(url, data=BODY, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return status, time.perf_counter() - started


def level(url: str, clients: int, requests: int) -> dict:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda _: one_request(url), range(requests)))
    wall = time.perf_counter() - started
    latencies = sorted(t for _, t in answers)
    return {"clients": clients, "requests": requests, "rps": requests / wall,
            "p50": statistics.median(latencies), "p95": latencies[max(0, int(0.95 * len(latencies)) - 1)],
            "codes": dict(collections.Counter(code for code, _ in answers))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=40, help="requests per level (bounded)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    url = dataset_url(server_url(args.database_url), 211, 1828, "1d")
    with gunicorn_server(url, workers=args.workers) as base:
        target = base + "/api/crypto/backtest/all"
        for _ in range(2 * args.workers):  # warm every worker's pool
            one_request(target)
        threads = Settings.from_env().gunicorn_threads  # what gunicorn.conf.py gives each worker
        print(f"{os.cpu_count()} cores, gunicorn {args.workers} workers x {threads} threads, "
              "211 x 1,828 daily candles, "
              f"use_parallel=auto, {args.requests} requests per level")
        print(f"{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}  status codes")
        for clients in args.clients:
            r = level(target, clients, args.requests)
            print(f"{r['clients']:>8}{r['rps']:>9.1f}{r['p50'] * 1000:>9.0f}{r['p95'] * 1000:>9.0f}  {r['codes']}")


if __name__ == "__main__":
    main()
