"""A repeated `/all` answered from stored results against the same request computed, side by side.

On the demo data (211 x 1,828 daily candles, its own database), over HTTP
through gunicorn on a loopback port (2 workers) and in process: the first
request stores every result; then `--repeats` rounds alternate the same
request with `"use_cache": false` (computed: sequential and parallel) and with
the default (answered from the store). It checks that the stored answer equals
the computed one (every field but the timings), and prints medians and the
speedup. Goal (issue 11): from the store <= 10 ms median over HTTP and >= 3x
faster than computing. It prints; it asserts nothing.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_cache.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_support import dataset_url, gunicorn_server, server_url  # noqa: E402

from api.config import Settings  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.services import CryptoBacktestService  # noqa: E402

MODES = {"computed, sequential": {"use_parallel": False, "use_cache": False},
         "computed, parallel": {"use_parallel": True, "use_cache": False},
         "from the store": {"use_parallel": True}}


def strip(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in answer["results"]]


def measure(run: Callable[[dict], dict], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {m: [] for m in MODES}
    reference = strip(run({"use_parallel": False, "use_cache": False}))
    run({})  # stores every result: the next request with the cache is answered from it
    for _ in range(repeats):
        for mode, flags in MODES.items():
            started = time.perf_counter()
            answer = run(flags)
            times[mode].append(time.perf_counter() - started)
            if strip(answer) != reference:
                print(f"  !! {mode}: the answer differs from the computed one")
            if mode == "from the store" and answer["summary"]["computed"]:
                print(f"  !! from the store: {answer['summary']['computed']} results were computed")
    return times


def report(where: str, times: dict[str, list[float]]) -> None:
    print(f"\n{where}: medians of {len(next(iter(times.values())))} rounds")
    print(f"  {'mode':22s} {'median ms':>10s} {'min ms':>8s} {'vs store':>9s}")
    store = statistics.median(times["from the store"])
    for mode, values in times.items():
        median = statistics.median(values)
        print(f"  {mode:22s} {median * 1000:10.1f} {min(values) * 1000:8.1f} {median / store:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cryptos", type=int, default=211)
    parser.add_argument("--candles", type=int, default=1828)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = dataset_url(server_url(args.database_url), args.cryptos, args.candles, "1d")
    body = {"strategy_id": 1, "parameters": {}}

    db_config = db_config_for(url, Settings())
    service = CryptoBacktestService(make_engine(db_config, pool_size=2), db_config)
    report("in process", measure(lambda flags: service.run_strategy_against_all_cryptos(
        1, {}, use_parallel=flags.get("use_parallel", True), use_cache=flags.get("use_cache", True)), args.repeats))

    with gunicorn_server(url) as base:
        def post(flags: dict) -> dict:
            req = urllib.request.Request(base + "/api/crypto/backtest/all", data=orjson.dumps({**body, **flags}),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=600) as resp:
                return orjson.loads(resp.read())

        report("HTTP (gunicorn, 2 workers, loopback)", measure(post, args.repeats))


if __name__ == "__main__":
    main()
