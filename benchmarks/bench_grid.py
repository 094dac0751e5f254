"""The issue's grid benchmark: a 1,000-setting RSI grid x every demo crypto, ours (unstored and stored,
sequential and parallel) and vectorbt on the same candles, in one run, side by side.

The grid is GRID below: rsi_period 5..50 step 5 x oversold 10..28 step 2 x
overbought 60..96 step 4 = exactly 1,000 valid settings of strategy 1 (RSI),
the other parameters at their defaults (fee 0.1 %, close execution, no stops).
On the demo dataset (211 synthetic cryptos x 1,828 daily candles, its own
database, see bench_support) that is 211,000 backtests per grid.

* ours       ``CryptoBacktestService.run_grid_sweep`` in process (its pool
             started before timing, one untimed warm-up per mode), four modes:
             sequential / parallel x unstored / stored. Wall time of the call,
             answer included, ``use_cache=False`` (every run computes). Before
             each stored run the result tables are emptied (untimed), so every
             stored run writes into the same empty tables. Modes are
             interleaved round by round, so load from other
             processes spreads over all of them.
* vectorbt   the same 1,000 settings on the same closes, read from the
             dataset's database with the repository's reader. Its best honest
             shot: the Wilder RSI precomputed once per distinct period by our
             ``api.engine.indicators.rsi`` (not timed: conservative for us; vbt's
             own RSI is not Wilder's), then, timed: the entry/exit signals of
             every setting as 2-D arrays, ONE ``vbt.Portfolio.from_signals`` per
             group of ``--vbt-per-call`` cryptos (1,000 columns each), and
             total_return, the closed-trade count, max_drawdown and sharpe_ratio
             per column. It runs on the first ``--vbt-cryptos`` cryptos and is
             scaled per backtest (it is a single process; ours uses the pool).
             vectorbt's all-cash buy (size=inf) charges the fee on top of the
             notional, ours takes it out of the cash: a per-bar fee array with
             f / (1 - f) on entry bars and f elsewhere makes them identical
             (see bench_peers.py).

Before anything is timed, vectorbt is checked against ours: every setting on
each vectorbt crypto (ours from ``run_parameter_sweep``), plus a sample of
settings on every crypto (the grid answer's own top rows and every 50th setting
from a sweep): closed round trips equal and total return within 1e-6 relative
(|a - b| <= 1e-6 |b| + 1e-12, as fractions). Any disagreement exits 1.

Besides wall times it reports CPU (% of one core) of this process (the sweep's
parent, which also builds the grid's answer), of the pool's workers and of the
PostgreSQL backends of the dataset's database, to show what bounds each mode,
and the sweep's own total_time (the wall time less building the grid's answer).

Goals (the issue): >= 100,000 backtests/s in parallel on this 2-core machine,
>= 20x vectorbt, stored within 1.5x of unstored. It prints whether each is met;
it asserts nothing about speed. The dataset's database is dropped at the end
unless --keep.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv-bench/bin/python benchmarks/bench_grid.py [--repeats 3] [--no-sequential] [--vbt-cryptos 20]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import dataset_url, drop_dataset, server_url  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from api.config import Settings  # noqa: E402
from api.db import repository as repo  # noqa: E402
from api.db.connection import db_config_for, make_engine  # noqa: E402
from api.engine import get_strategy  # noqa: E402
from api.engine.indicators import rsi  # noqa: E402
from api.services import CryptoBacktestService  # noqa: E402
from api.services.fanout import shutdown_pools  # noqa: E402
from api.services.grid import expand_grid  # noqa: E402
from api.services.selection import Selection  # noqa: E402

STRATEGY_ID = 1  # RSI
GRID = {"rsi_period": {"start": 5, "stop": 50, "step": 5},
        "oversold_threshold": {"start": 10, "stop": 28, "step": 2},
        "overbought_threshold": {"start": 60, "stop": 96, "step": 4}}
SETTINGS = 1_000
TOLERANCE = 1e-6  # relative, on total return as a fraction (plus 1e-12 absolute for returns of ~0)
SWEEP_CHUNK = 500  # run_parameter_sweep takes at most 500 settings
GOAL_PER_SECOND, GOAL_VS_VECTORBT, GOAL_STORED = 100_000, 20.0, 1.5

MODES = (("sequential, unstored", False, False), ("sequential, stored", False, True),
         ("parallel, unstored", True, False), ("parallel, stored", True, True))


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


# ---- ours --------------------------------------------------------------------------------

def empty_results(service: CryptoBacktestService) -> None:
    with service.engine.begin() as conn:
        conn.execute(text("TRUNCATE crypto_backtest_results, grid_results, backtest_batches"))


def db_backends(service: CryptoBacktestService) -> list[psutil.Process]:
    """The PostgreSQL backends serving the dataset's database (a local server: its pids are ours to read)."""
    with service.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        out = []
        for pid in pids:
            try:
                out.append(psutil.Process(pid))
            except psutil.Error:
                pass
        return out


def cpu_seconds(processes: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in processes:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def cpu_since(before: dict[int, float], processes: list[psutil.Process]) -> float:
    """CPU seconds of `processes` since `before` (a process not in it: all of its CPU)."""
    return sum(t - before.get(pid, 0.0) for pid, t in cpu_seconds(processes).items())


def run_ours(service: CryptoBacktestService, parallel: bool, store: bool, cryptos: int) -> dict[str, Any]:
    """One timed grid: wall seconds, CPU seconds of this process, of its pool workers and of the database's backends."""
    if store:
        empty_results(service)
    gc.collect()
    workers = psutil.Process().children(recursive=True)
    workers_before, db_before = cpu_seconds(workers), cpu_seconds(db_backends(service))
    cpu0, started = time.process_time(), time.perf_counter()
    answer = service.run_grid_sweep(STRATEGY_ID, GRID, use_parallel=parallel, store=store, use_cache=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    worker_cpu = cpu_since(workers_before, workers)
    db_cpu = cpu_since(db_before, db_backends(service))
    s = answer["summary"]
    if s["backtests"] != cryptos * SETTINGS or s["failed"]:
        raise SystemExit(f"grid answered {s['backtests']} backtests, {s['failed']} failed")
    if s["parallel"] != parallel:
        raise SystemExit(f"asked parallel={parallel}, ran parallel={s['parallel']}")
    return {"wall": wall, "cpu": cpu, "workers": worker_cpu, "db": db_cpu, "sweep": s["total_time"],
            "processes": s["processes"], "answer": answer}


def time_ours(service: CryptoBacktestService, modes: list[tuple[str, bool, bool]], repeats: int, cryptos: int
              ) -> dict[str, list[dict[str, Any]]]:
    print(f"ours: one warm-up per mode, then {repeats} interleaved rounds ({load()})", flush=True)
    for name, parallel, store in modes:
        run_ours(service, parallel, store, cryptos)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in modes}
    for i in range(repeats):
        for name, parallel, store in modes:
            r = run_ours(service, parallel, store, cryptos)
            del r["answer"]
            runs[name].append(r)
            print(f"  round {i + 1}: {name:22s} {r['wall']:6.2f} s  ({load()})", flush=True)
    return runs


# ---- the candles, and vectorbt -------------------------------------------------------------

def read_closes(service: CryptoBacktestService) -> list[tuple[str, np.ndarray]]:
    """(symbol, closes) of every crypto with data, in id order, as the database holds them."""
    with service.engine.connect() as conn:
        cryptos = repo.list_cryptos_with_data(conn)
        series = repo.load_candles_many(conn.connection.driver_connection, [c["id"] for c in cryptos], ["close"])
    return [(c["symbol"], series[c["id"]].close) for c in cryptos]


class GridPlan:
    """The grid's settings as arrays: each column's RSI period (an index into `periods`) and thresholds."""

    def __init__(self, sets: list[dict[str, Any]], periods: list[int] | None = None) -> None:
        self.sets = sets
        # a subset keeps the whole grid's periods: the precomputed RSI tables have a column for each
        self.periods = periods if periods is not None else sorted({int(s["rsi_period"]) for s in sets})
        self.period_index = np.array([self.periods.index(int(s["rsi_period"])) for s in sets])
        self.oversold = np.array([float(s["oversold_threshold"]) for s in sets])
        self.overbought = np.array([float(s["overbought_threshold"]) for s in sets])
        fees = {float(s["transaction_fee"]) for s in sets}
        cash = {float(s["initial_investment"]) for s in sets}
        assert len(fees) == 1 and len(cash) == 1, "one fee and one initial investment over the grid"
        self.fee, self.cash = fees.pop() / 100.0, cash.pop()

    def subset(self, columns: list[int]) -> GridPlan:
        return GridPlan([self.sets[i] for i in columns], self.periods)


def rsi_table(close: np.ndarray, plan: GridPlan) -> np.ndarray:
    """(candles, distinct periods): our Wilder RSI of each period (precomputed for vectorbt, untimed)."""
    return np.column_stack([rsi(close, p) for p in plan.periods])


PHASES = ("signals", "from_signals", "total_return", "closed trades", "max_drawdown", "sharpe_ratio")


def run_vectorbt(vbt: Any, closes: list[np.ndarray], rsis: list[np.ndarray], plan: GridPlan, per_call: int
                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every setting of `plan` on every crypto: one from_signals per `per_call` cryptos (settings x cryptos columns).

    Returns ({metric: array (cryptos, settings)}, {phase: seconds}).
    """
    f = plan.fee
    out: dict[str, list[np.ndarray]] = {"total_return": [], "trades": [], "max_drawdown": [], "sharpe": []}
    phases = dict.fromkeys(PHASES, 0.0)
    k = len(plan.sets)
    for g in range(0, len(closes), per_call):
        t0 = time.perf_counter()
        group = range(g, min(g + per_call, len(closes)))
        with np.errstate(invalid="ignore"):  # NaN warm-up compares False
            entries = np.hstack([rsis[i][:, plan.period_index] < plan.oversold for i in group])
            exits = np.hstack([rsis[i][:, plan.period_index] > plan.overbought for i in group])
        close = np.repeat(np.column_stack([closes[i] for i in group]), k, axis=1)
        fees = np.where(entries, f / (1.0 - f), f)  # see the module docstring
        t1 = time.perf_counter()
        pf = vbt.Portfolio.from_signals(close, entries, exits, size=np.inf, init_cash=plan.cash, fees=fees,
                                        accumulate=False, direction="longonly", freq="1D")
        t2 = time.perf_counter()
        total_return = pf.total_return().to_numpy()
        t3 = time.perf_counter()
        trades = pf.trades.closed.count().to_numpy()
        t4 = time.perf_counter()
        drawdown = pf.max_drawdown().to_numpy()
        t5 = time.perf_counter()
        sharpe = pf.sharpe_ratio().to_numpy()
        t6 = time.perf_counter()
        for name, value in zip(out, (total_return, trades, drawdown, sharpe)):
            out[name].append(value.reshape(len(group), k))
        for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            phases[phase] += seconds
    return {name: np.vstack(parts) for name, parts in out.items()}, phases


# ---- agreement ------------------------------------------------------------------------------

def our_rows(service: CryptoBacktestService, plan: GridPlan, columns: list[int], symbols: list[str] | None
             ) -> dict[tuple[int, str], dict[str, Any]]:
    """{(grid index, symbol): our result row} of the grid's `columns` from run_parameter_sweep (unstored), in
    chunks of 500 settings."""
    sets = [plan.sets[i] for i in columns]
    selection = Selection(symbols=tuple(symbols)) if symbols is not None else Selection()
    rows = {}
    for start in range(0, len(sets), SWEEP_CHUNK):
        chunk = sets[start:start + SWEEP_CHUNK]
        answer = service.run_parameter_sweep(STRATEGY_ID, chunk, use_parallel=True, store=False, selection=selection)
        by_params = {_key(s["parameters"]): s["results"] for s in answer["settings"]}
        for i, params in enumerate(chunk):
            for r in by_params[_key(params)]:
                rows[(columns[start + i], r["symbol"])] = r
    return rows


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def compare(label: str, vbt_out: dict[str, np.ndarray], symbols: list[str], columns: list[int],
            ours: dict[tuple[int, str], dict[str, Any]]) -> bool:
    """vectorbt (rows: symbols, columns: `columns` of the grid) against our rows; prints one line."""
    pairs = trade_bad = 0
    rel = dd = 0.0
    for ci, sym in enumerate(symbols):
        for cj, setting in enumerate(columns):
            r = ours[(setting, sym)]
            if r["error"] is not None:
                raise SystemExit(f"ours failed on {sym}, setting {setting}: {r['error']}")
            pairs += 1
            a, b = float(vbt_out["total_return"][ci, cj]), r["total_return"] / 100.0
            rel = max(rel, abs(a - b) / (abs(b) + 1e-12 / TOLERANCE))
            trade_bad += int(vbt_out["trades"][ci, cj]) != r["num_trades"]
            if r["max_drawdown"] is not None:
                dd = max(dd, abs(-float(vbt_out["max_drawdown"][ci, cj]) * 100.0 - r["max_drawdown"]))
    ok = trade_bad == 0 and rel <= TOLERANCE
    print(f"  {label:46s} {pairs:>7,} pairs  trade-count mismatches {trade_bad:>4}  "
          f"max rel diff of total return {rel:.1e}  {'OK' if ok else 'DISAGREE'}  "
          f"(max drawdown, not checked: max |diff| {dd:.1e} points)")
    return ok


def check_agreement(vbt: Any, service: CryptoBacktestService, plan: GridPlan, data: list[tuple[str, np.ndarray]],
                    rsis: list[np.ndarray], n_vbt: int, per_call: int, grid_top: list[dict[str, Any]]) -> bool:
    print("Agreement of vectorbt with ours (closed round trips; total return within "
          f"{TOLERANCE:g} relative):", flush=True)
    symbols = [s for s, _ in data]
    closes = [c for _, c in data]
    everything = list(range(len(plan.sets)))
    out, _ = run_vectorbt(vbt, closes[:n_vbt], rsis[:n_vbt], plan, per_call)
    ok = compare(f"every setting x the {n_vbt} vectorbt cryptos", out, symbols[:n_vbt], everything,
                 our_rows(service, plan, everything, symbols[:n_vbt]))
    sample = everything[::50]
    out, _ = run_vectorbt(vbt, closes, rsis, plan.subset(sample), 1)
    ok &= compare(f"every 50th setting ({len(sample)}) x all {len(symbols)} cryptos", out, symbols, sample,
                  our_rows(service, plan, sample, None))
    index = {_key(s): i for i, s in enumerate(plan.sets)}
    top = [index[_key(t["parameters"])] for t in grid_top]
    rows = {(index[_key(t["parameters"])], r["symbol"]): r for t in grid_top for r in t["results"]}
    out, _ = run_vectorbt(vbt, closes, rsis, plan.subset(top), 1)
    ok &= compare(f"the grid answer's top {len(top)} settings x all {len(symbols)}", out, symbols, top, rows)
    return ok


# ---- report ---------------------------------------------------------------------------------

def machine() -> str:
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return (f"{platform.machine()}, {model}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row; medians are reported")
    ap.add_argument("--no-sequential", action="store_true", help="skip our two sequential rows (slow)")
    ap.add_argument("--vbt-cryptos", type=int, default=20,
                    help="cryptos vectorbt is timed on (scaled per backtest); 0 = all")
    ap.add_argument("--vbt-per-call", default="1,2",
                    help="cryptos per from_signals call (x 1,000 columns), comma-separated: each is timed")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the dataset's database (default: drop it)")
    args = ap.parse_args(argv)
    per_calls = sorted({int(x) for x in args.vbt_per_call.split(",")})
    if min(args.cryptos, args.candles, args.repeats, *per_calls) < 1 or args.vbt_cryptos < 0:
        ap.error("--cryptos, --candles, --repeats and --vbt-per-call must be >= 1, --vbt-cryptos >= 0")
    try:
        import vectorbt as vbt
    except Exception as exc:  # noqa: BLE001 - report, run our side only
        vbt = None
        print(f"vectorbt is not importable ({type(exc).__name__}: {exc}): timing ours only")

    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"machine: {machine()}; python {platform.python_version()}, numpy {np.__version__}"
          + (f", vectorbt {vbt.__version__}" if vbt else ""))
    print(f"start: {load()}\n", flush=True)

    server = server_url(args.database_url)
    url = dataset_url(server, args.cryptos, args.candles, "1d")
    db_config = db_config_for(url, Settings())
    engine = make_engine(db_config, pool_size=2)
    service = CryptoBacktestService(engine, db_config)
    try:
        sets, skipped = expand_grid(get_strategy(STRATEGY_ID), GRID, None)
        if len(sets) != SETTINGS or skipped:
            raise SystemExit(f"the grid expands to {len(sets)} settings ({skipped} skipped), not {SETTINGS}")
        plan = GridPlan(sets)
        data = read_closes(service)
        backtests = len(data) * SETTINGS
        axes = ", ".join(f"{k} {v['start']}..{v['stop']} step {v['step']}" for k, v in GRID.items())
        print(f"grid: {SETTINGS:,} RSI settings ({axes}), defaults "
              f"otherwise (fee 0.1 %, close execution, no stops) x {len(data)} cryptos x {args.candles:,} daily "
              f"candles = {backtests:,} backtests")
        print(f"pool: {service.start_pool()} workers started", flush=True)

        modes = [m for m in MODES if not (args.no_sequential and not m[1])]
        grid_top = service.run_grid_sweep(STRATEGY_ID, GRID, use_parallel=True, store=False, use_cache=False)["top"]

        vbt_rows: list[tuple[int, float, dict[str, float]]] = []
        n_vbt = min(args.vbt_cryptos or len(data), len(data))
        if vbt is not None:
            rsis = [rsi_table(c, plan) for _, c in data]  # untimed, as for the peers in bench_peers.py
            print(flush=True)
            if not check_agreement(vbt, service, plan, data, rsis, n_vbt, per_calls[0], grid_top):
                print("vectorbt disagrees with ours: not timing anything.")
                return 1
            closes = [c for _, c in data[:n_vbt]]
            print(f"\nvectorbt: one warm-up, then {args.repeats} runs per --vbt-per-call on {n_vbt} cryptos "
                  f"({load()})", flush=True)
            for per_call in per_calls:
                run_vectorbt(vbt, closes, rsis[:n_vbt], plan, per_call)
                runs = []
                for _ in range(args.repeats):
                    gc.collect()
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    _, phases = run_vectorbt(vbt, closes, rsis[:n_vbt], plan, per_call)
                    wall = time.perf_counter() - t0
                    runs.append((wall, {**phases, "cpu": (time.process_time() - cpu0) / wall}))
                    print(f"  {per_call} crypto(s)/call: {runs[-1][0]:6.2f} s  ({load()})", flush=True)
                wall = statistics.median(t for t, _ in runs)
                phase = {p: statistics.median(ph[p] for _, ph in runs) for p in (*PHASES, "cpu")}
                vbt_rows.append((per_call, wall, phase))
        print(flush=True)
        runs = time_ours(service, modes, args.repeats, len(data))
        end_load = load()

        med = {name: statistics.median(r["wall"] for r in rs) for name, rs in runs.items()}
        rate = {name: backtests / t for name, t in med.items()}
        print(f"\n{'':42s} {'median s':>9s} {'min s':>7s} {'sweep s':>8s} {'backtests/s':>12s} "
              f"{'parent CPU':>11s} {'workers CPU':>12s} {'db CPU':>7s} {'procs':>6s}")
        for name, rs in runs.items():
            cpu = statistics.median(r["cpu"] / r["wall"] for r in rs) * 100
            wcpu = statistics.median(r["workers"] / r["wall"] for r in rs) * 100
            dbcpu = statistics.median(r["db"] / r["wall"] for r in rs) * 100
            sweep = statistics.median(r["sweep"] for r in rs)
            print(f"{'ours, ' + name:42s} {med[name]:9.2f} {min(r['wall'] for r in rs):7.2f} {sweep:8.2f} "
                  f"{rate[name]:12,.0f} "
                  f"{cpu:10.0f}% {wcpu if rs[0]['processes'] > 1 else 0:11.0f}% {dbcpu:6.0f}% {rs[0]['processes']:6d}")
        best_vbt = None
        for per_call, wall, phase in vbt_rows:
            per_second = n_vbt * SETTINGS / wall
            best_vbt = max(best_vbt or 0.0, per_second)
            label = f"vectorbt, {per_call} crypto x 1,000 cols/call" if per_call == 1 else \
                f"vectorbt, {per_call} cryptos x 1,000 cols/call"
            scaled = "*" if n_vbt < len(data) else " "
            print(f"{label:42s} {wall * len(data) / n_vbt:8.2f}{scaled} {'':7s} {'':8s} {per_second:12,.0f} "
                  f"{phase['cpu'] * 100:10.0f}% {'-':>12s} {'-':>7s} {1:6d}")
        if vbt_rows and n_vbt < len(data):
            print(f"* vectorbt ran on the first {n_vbt} of {len(data)} cryptos ({n_vbt * SETTINGS:,} backtests); "
                  f"its time is scaled to {len(data)} (--vbt-cryptos)")
        print("sweep s: the sweep's own total_time (the wall time without building the grid's answer: "
              "aggregates, top, best per crypto)")
        print("CPU: % of one core, median over the runs: parent = this process (the sweep's parent and the grid's "
              "answer), workers = the pool's processes together, db = PostgreSQL's backends of the dataset's "
              "database (reads; the COPY of stored rows)")
        for per_call, wall, phase in vbt_rows:
            print(f"vectorbt time, {per_call}/call, per crypto (1,000 backtests): " + ", ".join(
                f"{p} {phase[p] / n_vbt * 1e3:.0f} ms" for p in PHASES)
                + f"; total {wall / n_vbt * 1e3:.0f} ms")

        print("\nratios:")
        par, seq = "parallel, unstored", "sequential, unstored"
        if seq in med:
            print(f"  parallel / sequential speed-up   unstored {med[seq] / med[par]:.2f}x, "
                  f"stored {med['sequential, stored'] / med['parallel, stored']:.2f}x")
            print(f"  stored / unstored time           sequential {med['sequential, stored'] / med[seq]:.2f}x, "
                  f"parallel {med['parallel, stored'] / med[par]:.2f}x")
        else:
            print(f"  stored / unstored time           parallel {med['parallel, stored'] / med[par]:.2f}x")
        if best_vbt:
            print(f"  ours parallel vs vectorbt (its best per-call)   unstored {rate[par] / best_vbt:.1f}x, "
                  f"stored {rate['parallel, stored'] / best_vbt:.1f}x")
            if seq in rate:
                print(f"  ours sequential vs vectorbt (one core each)     unstored {rate[seq] / best_vbt:.1f}x, "
                      f"stored {rate['sequential, stored'] / best_vbt:.1f}x")

        def verdict(ok: bool) -> str:
            return "met" if ok else "NOT met"

        print("\ngoals (the issue):")
        print(f"  >= {GOAL_PER_SECOND:,} backtests/s in parallel: {rate[par]:,.0f} unstored, "
              f"{rate['parallel, stored']:,.0f} stored: {verdict(rate[par] >= GOAL_PER_SECOND)} unstored, "
              f"{verdict(rate['parallel, stored'] >= GOAL_PER_SECOND)} stored")
        if best_vbt:
            print(f"  >= {GOAL_VS_VECTORBT:g}x vectorbt: {rate[par] / best_vbt:.1f}x: "
                  f"{verdict(rate[par] / best_vbt >= GOAL_VS_VECTORBT)}")
        ratio = med["parallel, stored"] / med[par]
        print(f"  stored within {GOAL_STORED:g}x of unstored (parallel): {ratio:.2f}x: {verdict(ratio <= GOAL_STORED)}")
        print(f"\nend: {end_load}")
        return 0
    finally:
        shutdown_pools()
        engine.dispose()
        if args.keep:
            print(f"kept the dataset's database: {url}")
        else:
            drop_dataset(server, url)


if __name__ == "__main__":
    sys.exit(main())
