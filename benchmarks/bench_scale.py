"""Scale study (issue 14): hourly and minute candles at 1x, 4x and 16x the cryptos, on this host's process pool
and on a local Dask cluster, side by side in one run; where the time, the memory and the bytes go.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python benchmarks/bench_scale.py

Per workload and scale (synthetic candles, their own databases, see bench_support.dataset_url):
- read: every crypto's closes read once, in this process, on one connection (`repo.load_candles`): seconds and
  the bytes that crossed from PostgreSQL;
- compute: the grid on those candles in this process, one core (`run_settings`): seconds, candle-evaluations/s;
- result: the bytes of the per-crypto results that travel back to the parent (pickled, as both executors send them);
- pool / dask: the whole grid sweep (`run_grid_sweep`, unstored, computed) on the warm process pool (2 processes)
  and on a LocalCluster of 2 worker processes x 1 thread; the best of --runs, the answers checked equal;
- memory: the peak RSS of this process and of each pool / Dask worker process after the runs.
"""
from __future__ import annotations

import argparse
import logging
import pickle
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from benchmarks.bench_support import dataset_url, server_url  # noqa: E402
from tests.answers import untimed  # noqa: E402
from api.config import Settings  # noqa: E402
from api.db import repository as repo  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.engine import get_strategy, make_candles, run_settings  # noqa: E402
from api.engine.intervals import SECONDS_PER_INTERVAL, bars_per_year  # noqa: E402
from api.services import CryptoBacktestService  # noqa: E402
from api.services.backtest_service import _grid_crypto  # noqa: E402
from api.services.dask_fanout import use_worker_settings  # noqa: E402
from api.services.fanout import shutdown_pools, warm_pool  # noqa: E402

WORKLOADS = {  # name: (interval, candles per crypto, cryptos at 1x)
    "hourly": ("1h", 8_760, 16),  # a year of hourly candles
    "minute": ("1m", 43_200, 2),  # 30 days of minute candles
}
GRID = {"rsi_period": list(range(8, 32, 2))}  # 12 settings (--settings N: rsi_period 5 .. 5 + N - 1)
STRATEGY = 1



def _rss_mb(pids) -> list[float]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid).memory_info().rss / 2**20)
        except psutil.Error:
            pass
    return out


def measure(server: str, workload: str, scale: int, cluster: LocalCluster, runs: int, grid: dict) -> dict:
    interval, n_candles, base = WORKLOADS[workload]
    n_cryptos = base * scale
    url = dataset_url(server, n_cryptos, n_candles, interval, prefix="bench_scale")
    config = db_config_for(url, Settings())
    engine = make_engine(config, pool_size=2)
    spec = get_strategy(STRATEGY)
    sets = [{**spec.defaults(), "rsi_period": p} for p in grid["rsi_period"]]
    try:
        pool = CryptoBacktestService(engine, config, max_processes=2)
        dask = CryptoBacktestService(engine, config, executor="dask", dask_scheduler_address=cluster.scheduler_address)
        cryptos = pool.cryptos()
        # read and compute, apart, in this process
        with engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            started = time.perf_counter()
            series = [repo.load_candles(dbapi, c["id"], ("time", "close")) for c in cryptos]
            read_s = time.perf_counter() - started
        read_bytes = sum(s.close.nbytes + s.time.nbytes for s in series)
        per_year = bars_per_year(interval)
        started = time.perf_counter()
        for s in series:
            run_settings(spec, make_candles(s.close, s.close, s.close, s.close, np.ones(s.close.size), s.time,
                                            SECONDS_PER_INTERVAL[interval]), sets, per_year)
        compute_s = time.perf_counter() - started
        sample = _grid_crypto(cryptos[0], STRATEGY, sets, config)
        result_bytes = len(pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)) * len(cryptos)
        # the two executors, interleaved
        run = dict(store=False, use_cache=False, use_parallel=True)
        times = {"pool": [], "dask": []}
        answers = {}
        for _ in range(runs):
            for name, service in (("pool", pool), ("dask", dask)):
                started = time.perf_counter()
                answers[name] = service.run_grid_sweep(STRATEGY, grid, **run)
                times[name].append(time.perf_counter() - started)
        same = untimed(answers["pool"]) == untimed(answers["dask"])
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            dask_rss = list(client.run(lambda: psutil.Process().memory_info().rss / 2**20).values())
        pool_rss = _rss_mb(warm_pool(None).pids())
        dask.close()
        candles = n_cryptos * n_candles
        return {"workload": workload, "scale": scale, "cryptos": n_cryptos, "candles": candles,
                "evaluations": candles * len(sets), "read_s": read_s, "read_mb": read_bytes / 2**20,
                "compute_s": compute_s, "result_mb": result_bytes / 2**20,
                "pool_s": min(times["pool"]), "dask_s": min(times["dask"]),
                "pool_median_s": statistics.median(times["pool"]), "dask_median_s": statistics.median(times["dask"]),
                "same": same, "pool_rss_mb": max(pool_rss, default=0.0), "dask_rss_mb": max(dask_rss, default=0.0),
                "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "dask_workers": answers["dask"]["summary"]["workers"]}
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--workloads", default="hourly,minute")
    parser.add_argument("--settings", type=int, default=0, help="an RSI grid of this many periods (default 12)")
    args = parser.parse_args()
    server = server_url(args.database_url)
    grid = {"rsi_period": list(range(5, 5 + args.settings))} if args.settings else GRID
    # the workers use the URL each batch sends (no DATABASE_URL of their own: the datasets differ)
    use_worker_settings()  # as deployed workers run (dask.yaml: glibc's malloc left alone)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR, env={"DATABASE_URL": ""})
    rows = []
    try:
        for workload in args.workloads.split(","):
            for scale in (int(s) for s in args.scales.split(",")):
                row = measure(server, workload, scale, cluster, args.runs, grid)
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    finally:
        cluster.close(timeout=30)
        shutdown_pools()
    print(f"\n2 cores; grid of {len(grid['rsi_period'])} RSI settings; best of {args.runs} (medians in brackets)\n")
    print("| workload | scale | cryptos | candles | read s (MB) | compute s, 1 core (M evals/s) | results MB "
          "| pool s | dask s | dask / pool | same | RSS MB: pool worker / dask worker |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        print(f"| {r['workload']} | {r['scale']}x | {r['cryptos']} | {r['candles']:,} | {r['read_s']:.3f} "
              f"({r['read_mb']:.0f}) | {r['compute_s']:.3f} ({r['evaluations'] / r['compute_s'] / 1e6:.0f}) "
              f"| {r['result_mb']:.2f} | {r['pool_s']:.3f} ({r['pool_median_s']:.3f}) | {r['dask_s']:.3f} "
              f"({r['dask_median_s']:.3f}) | {r['dask_s'] / r['pool_s']:.2f} | {r['same']} "
              f"| {r['pool_rss_mb']:.0f} / {r['dask_rss_mb']:.0f} |")
    print(f"\nthis process's peak RSS: {rows[-1]['parent_peak_mb']:.0f} MB" if rows else "")


if __name__ == "__main__":
    main()
