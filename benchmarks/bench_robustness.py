"""Walk-forward and Monte Carlo on the demo market (issue 12): sequential vs parallel, side by side in one run.

Workloads, on 211 synthetic cryptos x 1,828 daily candles (a database of its
own, see bench_support):

* Monte Carlo `bars`: 1,000 block-bootstrap paths per crypto, RSI re-run on
  each (211,000 backtests on synthetic candles);
* Monte Carlo `trades`: 1,000 resampled trade sequences per crypto (for scale);
* walk-forward: a 100-setting RSI grid (10 periods x 10 oversold thresholds)
  over 5 windows (train 730 days, test 219 days) per crypto, chosen per crypto
  by Sharpe: 105,500 train backtests plus 1,055 test runs.

Each workload runs once to warm up (compiled kernels, the pool), then
`--repeats` rounds alternate sequential and parallel; medians are reported
with their ratio. Nothing is stored (store=False): this times the
computation. The goal (issue 12): each under 10 s on this 2-core machine.

    python benchmarks/bench_robustness.py [--repeats 3] [--keep]
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import dataset_url, drop_dataset, server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

from api.config import Settings  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.services import CryptoBacktestService  # noqa: E402
from api.services.fanout import shutdown_pools  # noqa: E402

GOAL_SECONDS = 10.0
GRID = {"rsi_period": {"start": 5, "stop": 50, "step": 5}, "oversold_threshold": {"start": 10, "stop": 37, "step": 3}}
WALK = {"train_days": 730, "test_days": 219}


def workloads(paths: int) -> dict[str, Callable[[CryptoBacktestService, bool], dict[str, Any]]]:
    return {
        f"Monte Carlo bars, {paths:,} paths": lambda s, p: s.run_monte_carlo(
            1, {}, method="bars", paths=paths, block_bars=20, seed=1, use_parallel=p, store=False),
        f"Monte Carlo trades, {paths:,} paths": lambda s, p: s.run_monte_carlo(
            1, {}, method="trades", paths=paths, seed=1, use_parallel=p, store=False),
        "walk-forward, 100 settings x 5 windows": lambda s, p: s.run_walk_forward(
            1, GRID, None, **WALK, use_parallel=p, store=False, equity_curve=True),
    }


def backtests(name: str, answer: dict[str, Any], cryptos: int, paths: int) -> int:
    s = answer["summary"]
    if name.startswith("walk"):
        if s["settings"] != 100 or s["windows"] != 5 * cryptos or s["failed"]:
            raise SystemExit(f"walk-forward ran {s['settings']} settings, {s['windows']} windows, {s['failed']} failed")
        return s["backtests"]
    if s["successful"] != cryptos:
        raise SystemExit(f"{name}: {s['successful']} of {cryptos} cryptos ran")
    return cryptos * paths


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828)
    ap.add_argument("--paths", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per mode; medians are reported")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the dataset's database (default: drop it)")
    args = ap.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"machine: {os.cpu_count()} cores; python {platform.python_version()}; start: {load()}\n", flush=True)
    server = server_url(args.database_url)
    url = dataset_url(server, args.cryptos, args.candles, "1d")
    settings = Settings(database_url=url)
    db_config = db_config_for(url, settings)
    engine = make_engine(db_config, pool_size=2)
    service = CryptoBacktestService(engine, db_config, max_sweep_backtests=1_000_000, task_timeout=600)
    try:
        print(f"pool: {service.start_pool()} workers started", flush=True)
        rows = []
        for name, run in workloads(args.paths).items():
            times: dict[bool, list[float]] = {False: [], True: []}
            answers = {}
            for parallel in (False, True):  # warm-up
                answers[parallel] = run(service, parallel)
            same = _comparable(answers[False]) == _comparable(answers[True])
            count = backtests(name, answers[True], args.cryptos, args.paths)
            for i in range(args.repeats):
                for parallel in (False, True):
                    started = time.perf_counter()
                    run(service, parallel)
                    times[parallel].append(time.perf_counter() - started)
                    print(f"  {name:40s} round {i + 1} {'parallel' if parallel else 'sequential':10s} "
                          f"{times[parallel][-1]:6.2f} s  ({load()})", flush=True)
            seq, par = statistics.median(times[False]), statistics.median(times[True])
            rows.append((name, count, seq, par, same))
        print(f"\n{'workload':40s} {'backtests':>10s} {'sequential s':>13s} {'parallel s':>11s} {'speed-up':>9s} "
              f"{'backtests/s':>12s} {'same':>5s} {'goal':>5s}")
        for name, count, seq, par, same in rows:
            print(f"{name:40s} {count:10,d} {seq:13.2f} {par:11.2f} {seq / par:8.2f}x {count / par:12,.0f} "
                  f"{'yes' if same else 'NO':>5s} {'met' if par < GOAL_SECONDS else 'MISS':>5s}")
        print(f"\nmedians of {args.repeats} rounds; same = the parallel answer equals the sequential one (timings "
              f"and mode fields aside); goal: under {GOAL_SECONDS:g} s; end: {load()}")
        return 0 if all(same for *_, same in rows) else 1
    finally:
        shutdown_pools()
        engine.dispose()
        if not args.keep:
            drop_dataset(server, url)


def _comparable(answer: dict[str, Any]) -> Any:
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in answer["results"]]


if __name__ == "__main__":
    sys.exit(main())
