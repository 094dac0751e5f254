"""The fan-out (one pipe per worker, api/services/fanout.py) vs multiprocessing.Pool, side by side in one run.

Same static worker (`CryptoBacktestService._run_single_backtest_worker`), same
data, same chunks (guided), same read-ahead per chunk, same number of fork
workers, both warm; rounds interleaved, medians printed, results checked equal.
Pool is what the service used before issue 9: this measures what the safety
costs (or saves). A third line sends large answers (2 MB each) through both,
the part of the protocol the two do differently. It prints; it asserts nothing.

    .venv/bin/python benchmarks/bench_fanout.py [--repeats 9] [--hourly]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import dataset_url, server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

from api.config import Settings  # noqa: E402
from api.db import repository as repo  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.services.backtest_service import CryptoBacktestService, warm_worker  # noqa: E402
from api.services.fanout import guided_chunks, pool_size, run_in_pool, shutdown_pools  # noqa: E402
from api.services.read_ahead import plan_read_ahead  # noqa: E402
from tests.fanout_tasks import payload  # noqa: E402

WORKER = CryptoBacktestService._run_single_backtest_worker


def _pool_chunk(func: Callable[..., Any], chunk: list[tuple]) -> list[Any]:
    """What a pool worker of the old design ran per chunk: plan the read-ahead, then each task."""
    if func is WORKER:
        plan_read_ahead(chunk)
    return [func(*args) for args in chunk]


def run_ours(func: Callable[..., Any], args: list[tuple], processes: int) -> list[Any]:
    return list(run_in_pool(func, args, processes, "fork", initializer=warm_worker,
                            before_chunk=plan_read_ahead if func is WORKER else None))


def make_pool_runner(processes: int) -> tuple[Callable[..., list[Any]], Any]:
    pool = mp.get_context("fork").Pool(processes, initializer=warm_worker)

    def run_pool(func: Callable[..., Any], args: list[tuple], processes: int) -> list[Any]:
        chunks = [args[a:b] for a, b in guided_chunks(len(args), processes)]
        out: list[Any] = []
        for part in pool.imap(_PoolCall(func), chunks):
            out.extend(part)
        return out
    return run_pool, pool


class _PoolCall:
    """Picklable (func, chunk) -> results for Pool.imap."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, chunk: list[tuple]) -> list[Any]:
        return _pool_chunk(self.func, chunk)


def strip(rows: list[Any]) -> list[Any]:
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} if isinstance(r, dict) else r for r in rows]


def timed(runners: dict[str, Callable[..., list[Any]]], func: Callable[..., Any], args: list[tuple],
          processes: int, repeats: int) -> dict[str, float]:
    reference = None
    times: dict[str, list[float]] = {name: [] for name in runners}
    for name, run in runners.items():  # warm-up, and every answer equal
        got = strip(run(func, args, processes))
        reference = got if reference is None else reference
        assert got == reference, f"{name} answered differently"
    for _ in range(repeats):
        for name, run in runners.items():
            started = time.perf_counter()
            run(func, args, processes)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--hourly", action="store_true", help="also 211 x 43,800 hourly candles")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    server = server_url(args.database_url)
    workloads = [("daily 211 x 1,828", 1828, "1d")] + ([("hourly 211 x 43,800", 43_800, "1h")] if args.hourly else [])
    processes = pool_size(211)
    run_pool, pool = make_pool_runner(processes)
    runners = {"fanout (pipe per worker)": run_ours, "multiprocessing.Pool": run_pool}
    print(f"{os.cpu_count()} cores, {processes} fork workers, median of {args.repeats}")
    print(f"{'workload':<26}{'fanout s':>10}{'Pool s':>10}{'Pool/fanout':>13}")
    try:
        for label, candles, interval in workloads:
            url = dataset_url(server, 211, candles, interval)
            config = db_config_for(url, Settings())
            engine = make_engine(config, pool_size=1)
            with engine.connect() as conn:
                cryptos = repo.list_cryptos_with_data(conn)
            _, params = CryptoBacktestService(engine, config).prepare(1, {})
            engine.dispose()
            task_args = [(c, 1, params, config) for c in cryptos]
            med = timed(runners, WORKER, task_args, processes, args.repeats)
            ours, theirs = med["fanout (pipe per worker)"], med["multiprocessing.Pool"]
            print(f"{label:<26}{ours:>10.4f}{theirs:>10.4f}{theirs / ours:>12.2f}x")
        big = [(i, 2_000_000) for i in range(200)]
        med = timed(runners, payload, big, processes, args.repeats)
        ours, theirs = med["fanout (pipe per worker)"], med["multiprocessing.Pool"]
        print(f"{'200 answers x 2 MB':<26}{ours:>10.4f}{theirs:>10.4f}{theirs / ours:>12.2f}x")
    finally:
        pool.terminate()
        pool.join()
        shutdown_pools()


if __name__ == "__main__":
    main()
