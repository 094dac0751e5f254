"""Sequential vs parallel vs auto for `run_strategy_against_all_cryptos`, side by side in one run.

For each workload it runs every mode once to warm up, then `--repeats` timed
rounds with the modes interleaved, checks that every mode returned identical
results (all fields but timings), and prints medians: wall time, speedup over
sequential, processes, seconds per crypto, CPU utilisation of this process and
its pool workers (share of all cores), peak memory (PSS of the service's process tree),
and the top 5 performers. It prints; it asserts nothing.

Workloads (synthetic data from api.demo_data, loaded once into its own database):
  daily   --cryptos x --candles daily candles (default 211 x 1,828), default parameters
  hourly  211 x 43,800 hourly candles (5 years), default parameters
  sweep   a 50-setting RSI grid over the daily data, through the same fan-out, storing
          its 10,550 result rows as the API does by default
  sweep-nostore   the same sweep with "store": false (the fan-out and compute alone)
`--http` times the same requests end to end through gunicorn on a loopback port.

    .venv/bin/python benchmarks/benchmark_parallel.py                      # daily, in process
    .venv/bin/python benchmarks/benchmark_parallel.py --workload all --http
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import ROOT, dataset_url, gunicorn_server, server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import psutil  # noqa: E402
from tqdm import tqdm  # noqa: E402

from api import create_app  # noqa: E402
from api.config import Settings  # noqa: E402
from api.services.fanout import shutdown_pools  # noqa: E402

MODES: tuple[Any, ...] = (False, True, "auto")
MODE_NAMES = {False: "sequential", True: "parallel", "auto": "auto"}


def sweep_grid(n: int = 50) -> list[dict[str, Any]]:
    """n RSI settings: periods x (oversold, overbought) pairs."""
    periods = [6, 8, 10, 12, 14, 16, 18, 21, 24, 28]
    bands = [(20, 80), (25, 75), (30, 70), (35, 65), (40, 60)]
    grid = [{"rsi_period": p, "oversold_threshold": lo, "overbought_threshold": hi}
            for p, (lo, hi) in itertools.product(periods, bands)]
    return grid[:n]


class TreeSampler:
    """Samples memory of a process tree while a run goes on; CPU from psutil counters.

    The tree is this process and its pool workers in process, and gunicorn's
    master, workers and their pools over HTTP: the service, never the
    benchmark's client and the answers it keeps. Memory is PSS (proportional
    set size) where the OS reports it: forked pool workers share most pages
    with their parent, and summing RSS would count those pages once per process.
    """

    def __init__(self, root_pid: int | None = None) -> None:
        self.me = psutil.Process(root_pid)
        self.peak = 0
        self._stop = threading.Event()

    def _tree(self) -> list[psutil.Process]:
        return [self.me, *self.me.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in self._tree():
                try:
                    info = p.memory_full_info()
                    total += getattr(info, "pss", info.rss)
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.02)

    def __enter__(self) -> "TreeSampler":
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def in_process_runner(database_url: str, workload: str) -> tuple[Callable[[Any], dict], Any]:
    app = create_app(Settings(database_url=database_url, log_level="WARNING"))
    service = app.extensions["backtest_service"]
    if workload.startswith("sweep"):
        grid, store = sweep_grid(), workload == "sweep"
        return (lambda mode: service.run_parameter_sweep(1, grid, use_parallel=mode, store=store)), service
    return (lambda mode: service.run_strategy_against_all_cryptos(1, {}, use_parallel=mode)), service


def http_runner(base: str, workload: str) -> Callable[[Any], dict]:
    import urllib.request

    def post(path: str, body: dict) -> dict:
        req = urllib.request.Request(base + path, data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as resp:
            return orjson.loads(resp.read())

    if workload.startswith("sweep"):
        grid, store = sweep_grid(), workload == "sweep"
        return lambda mode: post("/api/crypto/backtest/sweep",
                                 {"strategy_id": 1, "parameter_sets": grid, "use_parallel": mode, "store": store})
    return lambda mode: post("/api/crypto/backtest/all", {"strategy_id": 1, "parameters": {}, "use_parallel": mode})


def comparable(answer: dict) -> Any:
    """The answer without anything that is a timing or an id, for the equality check."""
    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in rows]
    if "settings" in answer:
        return [(s["parameters"], strip(s["results"])) for s in answer["settings"]]
    return strip(answer["results"])


def measure(run: Callable[[Any], dict], repeats: int, label: str, root_pid: int | None = None) -> dict[Any, dict]:
    """Warm-up, `repeats` interleaved timed rounds of every mode, then one memory-sampled run each.

    Memory is sampled in a separate run: reading every process's PSS costs CPU
    that would otherwise be charged to the timed rounds.
    """
    stats: dict[Any, dict] = {m: {"wall": [], "cpu": [], "peak": 0, "answer": None} for m in MODES}
    sampler = TreeSampler(root_pid)
    for mode in MODES:  # warm-up: pools, kernels, caches
        stats[mode]["answer"] = run(mode)
    for _ in tqdm(range(repeats), desc=label, unit="round", leave=False):
        for mode in MODES:
            cpu0 = sampler.cpu_seconds()
            t0 = time.perf_counter()
            run(mode)
            stats[mode]["wall"].append(time.perf_counter() - t0)
            stats[mode]["cpu"].append(sampler.cpu_seconds() - cpu0)
    for mode in MODES:
        with sampler:
            run(mode)
        stats[mode]["peak"] = sampler.peak
    return stats


def report(workload: str, where: str, stats: dict[Any, dict], n_cryptos: int) -> None:
    seq_median = statistics.median(stats[False]["wall"])
    same = all(comparable(stats[m]["answer"]) == comparable(stats[False]["answer"]) for m in MODES)
    cores = os.cpu_count() or 1
    print(f"\n{workload} ({where}): results identical across modes: {'YES' if same else 'NO - MISMATCH'}")
    print(f"  {'mode':<11}{'median s':>10}{'min s':>9}{'speedup':>9}{'procs':>7}{'ms/crypto':>11}"
          f"{'CPU util':>10}{'peak MB':>9}")  # peak MB = PSS of the service's process tree
    for mode in MODES:
        s = stats[mode]
        med = statistics.median(s["wall"])
        summary = s["answer"]["summary"]
        procs = summary["processes"]
        util = statistics.median(c / (w * cores) for c, w in zip(s["cpu"], s["wall"]))
        label = MODE_NAMES[mode] + ("->par" if mode == "auto" and summary["parallel"] else
                                    "->seq" if mode == "auto" else "")
        print(f"  {label:<11}{med:>10.3f}{min(s['wall']):>9.3f}{seq_median / med:>8.2f}x{procs:>7}"
              f"{med / n_cryptos * 1000:>11.3f}{util:>9.0%}{s['peak'] / 2**20:>9.0f}")
    answer = stats[True]["answer"]
    rows = answer["settings"][0]["results"] if "settings" in answer else answer["results"]
    if "settings" in answer:
        print(f"  best setting by average return: {answer['settings'][0]['parameters']}")
    print("  top 5: " + ", ".join(f"{r['symbol']} {r['total_return']:+.1f}%" for r in rows[:5]))
    if not same:
        raise SystemExit("parallel and sequential results differ")


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_control(rounds: int = 3) -> str:
    """A pure-CPU control: the same Python loop twice in one process vs in two processes.

    On a shared VM this ratio itself drifts; it says how much of a speedup the
    machine could give at the time of this run.
    """
    import multiprocessing as mp

    n = 2_000_000
    ratios = []
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_burn, [10, 10])
        for _ in range(rounds):
            t0 = time.perf_counter()
            _burn(n), _burn(n)
            seq = time.perf_counter() - t0
            t0 = time.perf_counter()
            pool.map(_burn, [n, n])
            ratios.append(seq / (time.perf_counter() - t0))
    return f"control: pure-CPU 2-process speedup on this machine now: median {statistics.median(ratios):.2f}x " \
           f"(range {min(ratios):.2f}-{max(ratios):.2f}; 2.00 is the ideal)"


def numba_startup() -> str:
    """Engine kernel start-up in a fresh process: cached load, and compile from an empty cache."""
    code = "import time; t=time.perf_counter(); import api.engine as e; w=getattr(e,'warm_up',None); " \
           "w and w(); print(f'{time.perf_counter()-t:.3f}')"
    cached = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    import tempfile

    with tempfile.TemporaryDirectory() as empty:
        env = {**os.environ, "NUMBA_CACHE_DIR": empty}
        cold = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                              text=True).stdout.strip()
    return f"engine import + kernel warm-up in a fresh process: {cached} s cached, {cold} s compiling " \
           f"(paid once per server process at start, never by a request)"


def calibrate(server: str, repeats: int) -> None:
    """Sequential vs parallel on small-to-medium universes: where does the fan-out start to pay?"""
    print("\ncalibration of use_parallel=\"auto\" (in process; work = candles x settings)")
    print(f"  {'cryptos x candles':>18}{'work':>10}{'seq ms':>9}{'par ms':>9}{'par/seq':>9}")
    for n, candles in [(10, 1000), (50, 1828), (100, 1828), (211, 1828), (211, 4000), (211, 8000), (211, 16000)]:
        url = dataset_url(server, n, candles, "1d")
        app = create_app(Settings(database_url=url, log_level="WARNING"))
        service = app.extensions["backtest_service"]
        med = {}
        for mode in (False, True):
            service.run_strategy_against_all_cryptos(1, {}, use_parallel=mode)
        walls: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for mode in (False, True):
                t0 = time.perf_counter()
                service.run_strategy_against_all_cryptos(1, {}, use_parallel=mode)
                walls[mode].append(time.perf_counter() - t0)
        med = {m: statistics.median(w) * 1000 for m, w in walls.items()}
        print(f"  {f'{n} x {candles}':>18}{n * candles:>10,}{med[False]:>9.1f}{med[True]:>9.1f}{med[True] / med[False]:>9.2f}")
        service.engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=["daily", "hourly", "sweep", "sweep-nostore", "all"], default="daily")
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828, help="candles per crypto for the daily workload")
    ap.add_argument("--interval", choices=["1d", "1h"], default="1d", help="interval of the 'daily' workload's data")
    ap.add_argument("--hourly-candles", type=int, default=43_800)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--http", action="store_true", help="also time the requests through gunicorn on loopback")
    ap.add_argument("--calibrate", action="store_true", help="only measure where parallel starts to pay")
    ap.add_argument("--database-url", help="server to use (default BENCH_DATABASE_URL, DATABASE_URL, embedded)")
    args = ap.parse_args()

    server = server_url(args.database_url)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB;"
          f" Python {platform.python_version()}, numpy {np.__version__}; repeats {args.repeats} (medians)")
    if args.calibrate:
        calibrate(server, args.repeats)
        return
    print(numba_startup())
    print(cpu_control())
    workloads = ["daily", "hourly", "sweep", "sweep-nostore"] if args.workload == "all" else [args.workload]
    for workload in workloads:
        if workload == "hourly":
            n, candles, interval = args.cryptos, args.hourly_candles, "1h"
        else:
            n, candles, interval = args.cryptos, args.candles, args.interval
        url = dataset_url(server, n, candles, interval)
        title = f"{workload}: {n} cryptos x {candles:,} {interval} candles" + \
                (f", {len(sweep_grid())} settings" + ("" if workload == "sweep" else ", not stored")
                 if workload.startswith("sweep") else "")
        run, service = in_process_runner(url, workload)
        report(title, "in process", measure(run, args.repeats, workload), n)
        service.engine.dispose()
        shutdown_pools()  # the in-process pool would only sit beside gunicorn's
        if args.http:
            with gunicorn_server(url) as base:
                report(title, "HTTP via gunicorn", measure(http_runner(base, workload), args.repeats,
                                                           workload + " http", root_pid=base.pid), n)


if __name__ == "__main__":
    main()
