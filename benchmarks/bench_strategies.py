"""Every strategy of the catalog through `run_strategy_against_all_cryptos`, sequential and parallel, in one run.

For each dataset, every (strategy, stops) configuration runs in both modes
once to warm up (pools, numba kernels, caches), then `--repeats` timed rounds
go through all configurations with the two modes interleaved. It checks that
both modes returned identical results (every field but the timings) in every
round, and prints per configuration: the median wall time of each mode, the
speedup, the ratio to RSI's median time in the same mode and with the same
stops (goal: every strategy within 1.5x RSI), and the successful / failed
crypto counts (with the failures' error codes), and the load average (on a
shared machine the other load is the main source of noise: raise --repeats).
It prints; it asserts nothing.

Stops: "off" is the defaults (every stop null); "on" is stop_loss_pct 5,
take_profit_pct 10, trailing_stop_pct 3.

Datasets (synthetic, api.demo_data, each loaded once into its own database
named `bench_strat_<interval>_<n>x<candles>_s42`, reused by later runs unless
`--drop`):
  daily   --cryptos x --candles daily candles (default 211 x 1,828), default parameters
  hourly  --hourly-cryptos x --hourly-candles hourly candles (default 4 x 43,800, 5 years).
          opening_range_breakout needs candles shorter than its range, so it
          fails every daily crypto (and, with its default 60-minute range,
          every hourly one) with insufficient_data by design; on the hourly
          set it runs with range_minutes = --orb-range-minutes (default 240:
          the 00:00-03:59 UTC bars), every other strategy with its defaults.
`--http` times the same requests end to end through gunicorn on a loopback port.
A last table times the engine alone (`run_backtest` per crypto on the daily
demo candles made in memory, metrics only as a batch runs it, no database):
at the service level each crypto's read and stored result dilute the
strategies' differences, this shows them undiluted.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/bench_strategies.py [--repeats 5] [--http] [--drop]
"""
from __future__ import annotations

import argparse
import collections
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import dataset_url, drop_dataset, gunicorn_server, server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from tqdm import tqdm  # noqa: E402

from api import create_app  # noqa: E402
from api.config import Settings  # noqa: E402
from api.demo_data import generate_demo_cryptos  # noqa: E402
from api.engine import CATALOG, EngineError, make_candles, run_backtest  # noqa: E402
from api.services.fanout import shutdown_pools  # noqa: E402

STOPS_ON = {"stop_loss_pct": 5, "take_profit_pct": 10, "trailing_stop_pct": 3}
MODES = (False, True)
PREFIX = "bench_strat"

Runner = Callable[[int, dict, bool], dict]


def configurations(extra: dict[str, dict]) -> list[tuple[Any, str, dict]]:
    """(strategy, "off"|"on", parameters) for every strategy; `extra` adds parameters per strategy code."""
    out = []
    for spec in sorted(CATALOG, key=lambda s: s.id):
        own = extra.get(spec.code, {})
        out.append((spec, "off", dict(own)))
        out.append((spec, "on", {**own, **STOPS_ON}))
    return out


def in_process_runner(database_url: str, store: bool) -> tuple[Runner, Any]:
    app = create_app(Settings(database_url=database_url, log_level="WARNING"))
    service = app.extensions["backtest_service"]

    def run(strategy_id: int, params: dict, mode: bool) -> dict:
        return service.run_strategy_against_all_cryptos(strategy_id, params, use_parallel=mode, store=store)
    return run, service


def http_runner(base: str, store: bool) -> Runner:
    import urllib.request

    def run(strategy_id: int, params: dict, mode: bool) -> dict:
        body = {"strategy_id": strategy_id, "parameters": params, "use_parallel": mode}
        if not store:
            body["store"] = False
        req = urllib.request.Request(base + "/api/crypto/backtest/all", data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as resp:
            return orjson.loads(resp.read())
    return run


def comparable(answer: dict) -> list[dict]:
    """The results without their timings, for the equality check."""
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in answer["results"]]


def measure(run: Runner, configs: list[tuple[Any, str, dict]], repeats: int, label: str) -> list[dict]:
    """Warm-up round, then `repeats` rounds of every configuration with the modes interleaved."""
    stats = [{"wall": {m: [] for m in MODES}, "reference": None, "identical": True, "answer": None}
             for _ in configs]

    def one(i: int, mode: bool) -> float:
        spec, _, params = configs[i]
        t0 = time.perf_counter()
        answer = run(spec.id, params, mode)
        wall = time.perf_counter() - t0
        s = stats[i]
        got = comparable(answer)
        if s["reference"] is None:
            s["reference"], s["answer"] = got, answer
        elif got != s["reference"]:
            s["identical"] = False
        return wall

    for i in range(len(configs)):  # warm-up: pools, kernels, caches
        for mode in MODES:
            one(i, mode)
    for _ in tqdm(range(repeats), desc=label, unit="round", leave=False):
        for i in range(len(configs)):
            for mode in MODES:
                stats[i]["wall"][mode].append(one(i, mode))
    return stats


def report(title: str, configs: list[tuple[Any, str, dict]], stats: list[dict], extra: dict[str, dict]) -> None:
    med = [{m: statistics.median(s["wall"][m]) for m in MODES} for s in stats]
    rsi = {stops: med[i] for i, (spec, stops, _) in enumerate(configs) if spec.code == "rsi"}
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{title}  [load average after: {load}]")
    print(f"  {'strategy':<24}{'stops':<6}{'seq s':>8}{'par s':>8}{'speedup':>9}{'seq/RSI':>9}{'par/RSI':>9}"
          f"{'ok':>5}{'failed':>7}  {'seq==par':<9}failures")
    worst = 0.0
    for (spec, stops, _), s, m in zip(configs, stats, med):
        results = s["answer"]["results"]
        ok = sum(1 for r in results if r["error"] is None)
        codes = collections.Counter(r["error"]["code"] for r in results if r["error"] is not None)
        r_seq, r_par = m[False] / rsi[stops][False], m[True] / rsi[stops][True]
        if codes.keys() != {"insufficient_data"} or ok:  # a strategy that ran (not rejected wholesale)
            worst = max(worst, r_seq, r_par)
        print(f"  {spec.code:<24}{stops:<6}{m[False]:>8.3f}{m[True]:>8.3f}{m[False] / m[True]:>8.2f}x"
              f"{r_seq:>8.2f}x{r_par:>8.2f}x{ok:>5}{len(results) - ok:>7}  "
              f"{'yes' if s['identical'] else 'NO':<9}{', '.join(f'{c} {n}' for c, n in codes.items())}")
    for code, params in extra.items():
        print(f"  ({code} with {params}; every other strategy with its defaults)")
    print(f"  worst ratio to RSI among strategies that ran: {worst:.2f}x (goal <= 1.5x)")
    if not all(s["identical"] for s in stats):
        print("  MISMATCH: sequential and parallel results differ")


def engine_only(n_cryptos: int, n_candles: int, repeats: int) -> None:
    """Median per-crypto µs of run_backtest for every configuration, daily demo candles in memory."""
    cryptos = [make_candles(d.open, d.high, d.low, d.close, d.volume, d.times.astype("datetime64[s]").astype(np.int64),
                            86_400) for d in generate_demo_cryptos(n_cryptos=n_cryptos, n_candles=n_candles)]
    configs = configurations({})
    times: list[list[float]] = [[] for _ in configs]

    def one(i: int) -> float:
        spec, _, own = configs[i]
        params = {**spec.defaults(), **own}
        t0 = time.perf_counter()
        for candles in cryptos:
            try:
                run_backtest(spec, candles, params, 365.0, with_trades=False)
            except EngineError:
                pass
        return time.perf_counter() - t0

    for i in range(len(configs)):
        one(i)  # warm-up
    for _ in range(repeats):
        for i in range(len(configs)):
            times[i].append(one(i))
    us = [statistics.median(t) / n_cryptos * 1e6 for t in times]
    rsi = {stops: us[i] for i, (spec, stops, _) in enumerate(configs) if spec.code == "rsi"}
    print(f"\nengine only: run_backtest(with_trades=False) per crypto, {n_cryptos} x {n_candles:,} daily demo candles "
          f"in memory, median of {repeats}  [load average: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}]")
    print(f"  {'strategy':<24}{'stops':<6}{'µs/crypto':>10}{'vs RSI':>8}")
    for (spec, stops, _), t in zip(configs, us):
        note = "  (insufficient_data: raises before simulating)" if spec.code == "opening_range_breakout" else ""
        print(f"  {spec.code:<24}{stops:<6}{t:>10.1f}{t / rsi[stops]:>7.2f}x{note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828, help="daily candles per crypto")
    ap.add_argument("--hourly-cryptos", type=int, default=4, help="0 skips the hourly dataset")
    ap.add_argument("--hourly-candles", type=int, default=43_800)
    ap.add_argument("--orb-range-minutes", type=int, default=240,
                    help="opening_range_breakout's range_minutes on the hourly dataset")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-store", action="store_true", help='run with "store": false (default: store, as the API)')
    ap.add_argument("--http", action="store_true", help="also time the requests through gunicorn on loopback")
    ap.add_argument("--no-engine", action="store_true", help="skip the engine-only table")
    ap.add_argument("--drop", action="store_true", help="drop this benchmark's databases at the end")
    ap.add_argument("--database-url", help="server to use (default BENCH_DATABASE_URL, DATABASE_URL, embedded)")
    args = ap.parse_args()
    store = not args.no_store

    server = server_url(args.database_url)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"numpy {np.__version__}; median of {args.repeats} rounds after a warm-up, modes interleaved; "
          f"results {'stored' if store else 'not stored'}")
    print(f"stops off = defaults (null); stops on = {STOPS_ON}")
    datasets = [("daily", args.cryptos, args.candles, "1d", {})]
    if args.hourly_cryptos > 0:
        datasets.append(("hourly", args.hourly_cryptos, args.hourly_candles, "1h",
                         {"opening_range_breakout": {"range_minutes": args.orb_range_minutes}}))
    urls = []
    try:
        for name, n, candles, interval, extra in datasets:
            url = dataset_url(server, n, candles, interval, prefix=PREFIX)
            urls.append(url)
            configs = configurations(extra)
            title = f"{name}: {n} cryptos x {candles:,} {interval} candles"
            run, service = in_process_runner(url, store)
            report(title + " (in process)", configs, measure(run, configs, args.repeats, name), extra)
            service.engine.dispose()
            shutdown_pools()  # the in-process pool would only sit beside gunicorn's
            if args.http:
                with gunicorn_server(url) as base:
                    stats = measure(http_runner(base, store), configs, args.repeats, name + " http")
                    report(title + " (HTTP via gunicorn)", configs, stats, extra)
        if not args.no_engine:
            engine_only(args.cryptos, args.candles, args.repeats)
    finally:
        if args.drop:
            for url in urls:
                drop_dataset(server, url)
            print(f"\ndropped {len(urls)} benchmark database(s)")


if __name__ == "__main__":
    main()
