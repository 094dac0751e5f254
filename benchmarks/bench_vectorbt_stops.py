"""Our engine's stops against vectorbt's `Portfolio.from_signals` stops, on the same SMA-cross signals.

Runs in the peer venv (`make bench-vectorbt-stops`, which builds `.venv-bench`
like `make bench-peers`). No database: the demo candles come straight from
`api.demo_data` (daily, seed 42), and the boolean entry/exit arrays from our
own `sma_cross` strategy (`get_strategy("sma_cross").signals`, 20/50), fed
to vectorbt with the candles' open/high/low/close.

FIRST the agreement check, per crypto and configuration: every trade's entry
and exit bar and fill price, and the final equity, ours vs vectorbt's; it
prints how many cryptos agree exactly and, for the others, the first
differing trade and the reason. THEN the timing, per crypto (median of
`--repeats`, after a warm-up that also compiles vectorbt's numba kernels):
ours `run_backtest` vs `from_signals` for one column at a time, and,
separately, `from_signals` with every crypto as a column in one call.
It prints; it asserts nothing.

How the two rule sets are made to agree (vectorbt 1.2.0, read in
vectorbt/portfolio/nb.py: simulate_from_signal_func_nb, get_stop_price_nb):

* execution "close" (ours) = vectorbt's default price (the close); both
  place a stop only after the entry fill, so neither checks a stop on the
  entry bar: vectorbt checks stops at the start of each later bar.
* stop levels from the entry fill: `stop_entry_price="fillprice"` (with no
  slippage equal to the default "close"); `stop_exit_price="stopmarket"` fills
  a stop at its level, or at the open when the bar gaps through it, with the
  user slippage (ours: slippage on every fill; slippage is 0 here anyway).
  vectorbt's stop-loss rule `open <= stop -> open; low <= stop <= high -> stop`
  and take-profit rule `tp <= open -> open; low <= tp <= high -> tp` are ours
  for any bar with low <= open <= high; the stop-loss is checked first (the
  stop wins a bar touching both), as ours.
* trailing: vectorbt has ONE stop-loss, fixed or trailing (`sl_trail=True`,
  trailing from the highest high after each checked bar, starting at the
  entry price: our peak rule). Ours takes max(stop-loss, trail); with
  stop_loss_pct 5 and trailing_stop_pct 3 the trail (>= entry x 0.97) is
  always above the stop-loss (entry x 0.95), so ours == vectorbt
  `sl_stop=0.03, sl_trail=True`.
* after a stop exit vectorbt takes no user signal on that bar ("stop signal
  comes first"), i.e. no re-entry on that bar: our rule too.
* all in: `size=np.inf`, `accumulate=False`, `direction="longonly"`. vectorbt
  adds the fee on top of an all-cash buy (units = cash / (price x (1 + fee)));
  ours takes it out of the cash (units = cash x (1 - f) / price). A per-bar
  fee array with f / (1 - f) on bars with an entry signal and f elsewhere
  makes both identical, as long as no sell happens on an entry-signal bar:
  true for SMA-cross signals (while long, the only entry-signal bar is the
  entry bar, and under "close" no stop is checked on it).
* an open position at the end: both mark it at the last close without exit fee.
Not compared: "next_open" execution, exit reasons (vectorbt 1.2.0 does not
record which stop fired).

    make bench-vectorbt-stops            # or: .venv-bench/bin/python benchmarks/bench_vectorbt_stops.py
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from api.demo_data import generate_demo_cryptos  # noqa: E402
from api.engine import get_strategy, make_candles, run_backtest  # noqa: E402

BARS_PER_YEAR = 365.0  # the demo data is daily
SMA = get_strategy("sma_cross")
PRICE_TOLERANCE = 1e-12  # relative, fill prices
EQUITY_TOLERANCE = 1e-9  # relative, final equity

# name, our stop parameters (percent), vectorbt's stop arguments (fractions)
STOPS = (
    ("no stops", {}, {}),
    ("SL 5", {"stop_loss_pct": 5}, {"sl_stop": 0.05}),
    ("TP 10", {"take_profit_pct": 10}, {"tp_stop": 0.10}),
    ("SL 5 + TP 10", {"stop_loss_pct": 5, "take_profit_pct": 10}, {"sl_stop": 0.05, "tp_stop": 0.10}),
    ("trail 3 + TP 10", {"trailing_stop_pct": 3, "take_profit_pct": 10},
     {"sl_stop": 0.03, "sl_trail": True, "tp_stop": 0.10}),
    ("SL 5 + TP 10 + trail 3", {"stop_loss_pct": 5, "take_profit_pct": 10, "trailing_stop_pct": 3},
     {"sl_stop": 0.03, "sl_trail": True, "tp_stop": 0.10}),
)
# rule sets that do NOT map (shown so the differences and their reason are visible): ours stop = max(SL 3, trail 5),
# where the fixed 3 % stop-loss is the higher level until the peak passes entry x 0.97 / 0.95; vectorbt has one
# stop-loss, here the 5 % trail alone
UNMAPPED = (
    ("SL 3 + trail 5 (no map)", {"stop_loss_pct": 3, "trailing_stop_pct": 5}, {"sl_stop": 0.05, "sl_trail": True}),
)
FEES = (0.0, 0.1)  # percent per fill


def load(n_cryptos: int, n_candles: int) -> list[dict]:
    """The demo cryptos as candles, SMA-cross signals and the pandas inputs vectorbt gets."""
    out = []
    for demo in generate_demo_cryptos(n_cryptos=n_cryptos, n_candles=n_candles):
        candles = make_candles(demo.open, demo.high, demo.low, demo.close, demo.volume,
                               demo.times.astype("datetime64[s]").astype(np.int64), 86_400)
        entry, exit_ = SMA.signals(candles, SMA.defaults())
        index = pd.DatetimeIndex(demo.times)
        out.append({"symbol": demo.symbol, "candles": candles, "entry": entry, "exit": exit_, "index": index,
                    "series": {k: pd.Series(getattr(candles, k), index=index) for k in ("open", "high", "low", "close")},
                    "entry_s": pd.Series(entry, index=index), "exit_s": pd.Series(exit_, index=index)})
    return out


def our_params(stops: dict, fee_pct: float) -> dict:
    return {**SMA.defaults(), "transaction_fee": fee_pct, **stops}


def vbt_fees(entry, fee_pct: float):
    """Per-bar fees making vectorbt's all-cash buy equal to ours (see the module docstring)."""
    f = fee_pct / 100.0
    return np.where(entry, f / (1.0 - f), f) if f else 0.0


def run_vbt(vbt, ohlc: dict, entries, exits, fees, stops: dict, init: float):
    return vbt.Portfolio.from_signals(
        ohlc["close"], entries, exits, open=ohlc["open"], high=ohlc["high"], low=ohlc["low"],
        size=np.inf, init_cash=init, fees=fees, accumulate=False, direction="longonly",
        stop_entry_price="fillprice", stop_exit_price="stopmarket", upon_stop_exit="close",
        freq="1D", **stops)


def our_trades(outcome) -> list[tuple]:
    return [(t.entry_bar, -1 if t.is_open else t.exit_bar, t.entry_price,
             np.nan if t.is_open else t.exit_price) for t in outcome.trades]


def vbt_trades(pf, col: int | None = None) -> list[tuple]:
    rec = pf.trades.values
    if col is not None:
        rec = rec[rec["col"] == col]
    return [(int(r["entry_idx"]), int(r["exit_idx"]) if r["status"] == 1 else -1, float(r["entry_price"]),
             float(r["exit_price"]) if r["status"] == 1 else np.nan) for r in rec]


def rel(a: float, b: float) -> float:
    if np.isnan(a) and np.isnan(b):
        return 0.0
    return abs(a - b) / abs(b) if b else abs(a - b)


def explain(c: dict, ours: list[tuple], theirs: list[tuple]) -> str:
    """The first differing trade and what the bar looked like."""
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if a[:2] != b[:2] or rel(a[2], b[2]) > PRICE_TOLERANCE or rel(a[3], b[3]) > PRICE_TOLERANCE:
            bar = a[1] if a[1] >= 0 else b[1]
            cd = c["candles"]
            ohlc = (f"; bar {bar}: O {cd.open[bar]:.6g} H {cd.high[bar]:.6g} L {cd.low[bar]:.6g} "
                    f"C {cd.close[bar]:.6g}" if bar >= 0 else "")
            return (f"trade {k}: ours entry {a[0]} @ {a[2]:.10g} exit {a[1]} @ {a[3]:.10g}; vectorbt entry {b[0]} "
                    f"@ {b[2]:.10g} exit {b[1]} @ {b[3]:.10g}{ohlc}")
    return f"trade count: ours {len(ours)}, vectorbt {len(theirs)}"


def check_agreement(vbt, data: list[dict]) -> None:
    print("Agreement (per crypto: same trades, entry/exit bars exact, fill prices within "
          f"{PRICE_TOLERANCE:g} relative, final equity within {EQUITY_TOLERANCE:g}):")
    print(f"  {'stops':<24}{'fee %':>6}{'agree':>8}{'trades':>8}{'by stops':>10}{'max price diff':>16}"
          f"{'max equity diff':>17}")
    for name, ours_stops, vbt_stops in STOPS + UNMAPPED:
        for fee in FEES if (name, ours_stops, vbt_stops) in STOPS else FEES[:1]:
            p = our_params(ours_stops, fee)
            agree, trades, stopped, worst_p, worst_e, bad = 0, 0, 0, 0.0, 0.0, []
            for c in data:
                out = run_backtest(SMA, c["candles"], p, BARS_PER_YEAR)
                pf = run_vbt(vbt, c["series"], c["entry_s"], c["exit_s"], vbt_fees(c["entry"], fee), vbt_stops,
                             p["initial_investment"])
                a, b = our_trades(out), vbt_trades(pf)
                final_ours = float(out.equity[-1])
                final_vbt = float(pf.value().iloc[-1])
                e = rel(final_ours, final_vbt)
                same = len(a) == len(b) and all(x[:2] == y[:2] for x, y in zip(a, b))
                pdiff = max((max(rel(x[2], y[2]), rel(x[3], y[3])) for x, y in zip(a, b)), default=0.0)
                trades += len(a)
                stopped += sum(t.exit_reason not in ("signal", "end") for t in out.trades)
                if same:
                    worst_p = max(worst_p, pdiff)
                    worst_e = max(worst_e, e)
                if same and pdiff <= PRICE_TOLERANCE and e <= EQUITY_TOLERANCE:
                    agree += 1
                else:
                    bad.append(f"{c['symbol']}: {explain(c, a, b)}; final equity ours {final_ours:.10g} "
                               f"vectorbt {final_vbt:.10g}")
            print(f"  {name:<24}{fee:>6g}{agree:>5}/{len(data):<3}{trades:>7}{stopped:>10}{worst_p:>16.1e}"
                  f"{worst_e:>17.1e}")
            for line in bad[:3]:
                print(f"      DIFFERS {line}")
            if len(bad) > 3:
                print(f"      ... and {len(bad) - 3} more")
    print("  (max diffs over the cryptos whose trade bars agree; trades = ours, the open one included; by stops = "
          "ours closed by a stop-loss, trailing stop or take-profit)")
    print("  (no map): vectorbt has ONE stop-loss, fixed or trailing; ours is max(stop-loss, trail), so a fixed 3 % "
          "above a 5 % trail exits earlier in ours: expected to differ\n")


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (numba compile, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timing(vbt, data: list[dict], repeats: int, fee: float) -> None:
    n = len(data)
    index = data[0]["index"]
    ohlc_2d = {k: pd.DataFrame(np.column_stack([getattr(c["candles"], k) for c in data]), index=index)
               for k in ("open", "high", "low", "close")}
    entries_2d = pd.DataFrame(np.column_stack([c["entry"] for c in data]), index=index)
    exits_2d = pd.DataFrame(np.column_stack([c["exit"] for c in data]), index=index)
    fees_2d = vbt_fees(entries_2d.to_numpy(), fee)
    fees_1d = [vbt_fees(c["entry"], fee) for c in data]

    print(f"Timing, per crypto (µs; median of {repeats} runs over all {n} cryptos; fee {fee:g} %):")
    print("  ours       run_backtest(sma_cross): the SMA signals, the simulator, all metrics and the trade list")
    print("  ours sig   run_backtest with the precomputed signals (the same arrays vectorbt gets), metrics, trades")
    print("  vbt 1-col  from_signals on one crypto's pandas Series (built beforehand, untimed) + total_return()")
    print("  vbt 2-D    from_signals with all cryptos as columns, one call (DataFrames built beforehand) + "
          "total_return(), divided by the crypto count")
    print(f"  {'stops':<24}{'ours':>9}{'ours sig':>10}{'vbt 1-col':>11}{'vbt 2-D':>9}{'1-col/ours':>12}"
          f"{'1-col/sig':>11}{'2-D/ours':>10}")
    for name, ours_stops, vbt_stops in STOPS:
        p = our_params(ours_stops, fee)
        init = p["initial_investment"]

        def ours():
            for c in data:
                run_backtest(SMA, c["candles"], p, BARS_PER_YEAR)

        specs = [dataclasses.replace(SMA, signals=lambda _c, _p, e=c["entry"], x=c["exit"]: (e, x)) for c in data]

        def ours_sig():
            for spec, c in zip(specs, data):
                run_backtest(spec, c["candles"], p, BARS_PER_YEAR)

        def vbt_1col():
            for c, f in zip(data, fees_1d):
                run_vbt(vbt, c["series"], c["entry_s"], c["exit_s"], f, vbt_stops, init).total_return()

        def vbt_2d():
            run_vbt(vbt, ohlc_2d, entries_2d, exits_2d, fees_2d, vbt_stops, init).total_return()

        us = {k: median_seconds(fn, repeats) / n * 1e6
              for k, fn in (("ours", ours), ("sig", ours_sig), ("1col", vbt_1col), ("2d", vbt_2d))}
        print(f"  {name:<24}{us['ours']:>9.1f}{us['sig']:>10.1f}{us['1col']:>11.1f}{us['2d']:>9.1f}"
              f"{us['1col'] / us['ours']:>11.1f}x{us['1col'] / us['sig']:>10.1f}x{us['2d'] / us['ours']:>9.1f}x")
    print("  goal: ours at least 10x vectorbt per crypto (1-col/ours >= 10)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    ap.add_argument("--timing-fee", type=float, default=0.1, help="transaction_fee (%%) of the timed runs")
    args = ap.parse_args(argv)
    if min(args.cryptos, args.candles, args.repeats) < 1:
        ap.error("--cryptos, --candles and --repeats must be >= 1")

    import numba
    import vectorbt as vbt

    print(f"python {platform.python_version()}  numpy {np.__version__}  pandas {pd.__version__}  "
          f"numba {numba.__version__}  vectorbt {vbt.__version__}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"data: {args.cryptos} synthetic cryptos x {args.candles} daily candles (seed 42); signals: sma_cross "
          f"{SMA.defaults()['fast_period']}/{SMA.defaults()['slow_period']}; execution close, slippage 0, "
          f"10000 initial\n")
    data = load(args.cryptos, args.candles)
    check_agreement(vbt, data)
    timing(vbt, data, args.repeats, args.timing_fee)
    return 0


if __name__ == "__main__":
    sys.exit(main())
