"""Benchmark our RSI engine against peer backtesters on identical inputs.

The same long-only RSI strategy (defaults of ``rsi``: 10000 cash,
0.1 % fee per fill, RSI 14, buy below 30, sell above 70, decisions and fills
at each bar's close, all cash in, one position, an open position marked to
market at the last close without exit fee) runs on the synthetic demo candles
in:

* ours       ``api.engine.run_backtest(get_strategy("rsi"), candles_from_close(close), ...)``
             per crypto, INCLUDING its own RSI computation, input validation
             and the full metrics dict;
* vectorbt   ``vbt.Portfolio.from_signals``, one 2-D call (cryptos as
             columns; building its 2-D inputs is timed too), plus total
             return, closed-trade count, win rate, max drawdown and Sharpe;
* backtesting.py  one ``FractionalBacktest`` per crypto (stats included);
* pandas     a naive ``df.iterrows()`` state machine, the way a naive
             service would write it.

The peers get the RSI precomputed by our ``compute_rsi`` (not timed), so the
comparison is conservative for us. Every peer is first checked against ours
(closed round trips and total return, per crypto); timing starts only if all
agree, otherwise the script exits 1. Times are medians of ``--repeats`` runs,
reported per crypto; the slow peers run on ``--slow-cryptos`` cryptos and are
scaled per crypto.

Traps this script handles (each makes a peer disagree otherwise):

* ``vbt.RSI`` is not Wilder's RSI (TA-Lib convention), so all peers share one
  RSI array; signals are ``rsi < oversold`` / ``rsi > overbought``, NaN=False.
* vectorbt's all-cash buy (size=inf) charges the fee on top of the notional:
  units = cash / (close * (1 + fee)). Ours takes it out of the cash:
  units = cash * (1 - f) / close. A per-bar fee array with f / (1 - f) on
  entry bars and f elsewhere makes both identical. ``trades.win_rate()``
  counts the open trade; we use ``trades.closed``.
* backtesting.py trades whole units only: ``FractionalBacktest`` scales prices
  by a per-crypto unit so that one unit is worth ~1e-12 of the cash. Its
  commission is one rate for both legs and is added on top at entry, so a
  callable commission switches between f / (1 - f) (entry) and f (exit).
  ``trade_on_close=True`` fills an order placed on bar i at close i, but only
  on the next bar's step, hence a padding bar at the end. Its equity curve is
  logged before that fill, so drawdown differs slightly and is not compared.
  ``size`` below 1 is a fraction of equity: 1 - 1e-10 means "all in". The
  RSI is read from a plain array: wrapped in ``self.I()``, its NaN warm-up
  would make backtesting.py skip the first bar that has an RSI.
* TQDM_DISABLE=1 is set before backtesting.py is imported.

Run from the repo root:  .venv-bench/bin/python benchmarks/bench_peers.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # must precede importing backtesting
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from api.demo_data import generate_demo_cryptos  # noqa: E402
from api.engine import candles_from_close, compute_rsi, get_strategy, run_backtest  # noqa: E402

PEERS = ("vectorbt", "backtesting", "pandas")
SLOW = ("backtesting", "pandas")
TOLERANCE = 1e-6  # relative difference of final equity (= of 1 + total return)
BARS_PER_YEAR = 365.0  # the demo data is daily
RSI = get_strategy("rsi")


def run_ours(data, p):
    out = []
    for close in data["close"]:
        m = run_backtest(RSI, candles_from_close(close), p, BARS_PER_YEAR).metrics
        out.append((m["num_trades"], m["total_return"] / 100.0))
    return out


def run_vectorbt(data, p):
    import vectorbt as vbt

    f = p["transaction_fee"] / 100.0
    rsi = np.column_stack(data["rsi"])
    close = pd.DataFrame(np.column_stack(data["close"]), index=data["index"])
    with np.errstate(invalid="ignore"):
        entries, exits = rsi < p["oversold_threshold"], rsi > p["overbought_threshold"]
    fees = np.where(entries, f / (1.0 - f), f)  # see the module docstring
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, size=np.inf, init_cash=p["initial_investment"],
        fees=fees, accumulate=False, direction="longonly", freq="1D",
    )
    closed = pf.trades.closed
    n_trades, total_return = closed.count().to_numpy(), pf.total_return().to_numpy()
    closed.win_rate(), pf.max_drawdown(), pf.sharpe_ratio()  # like our metrics
    return list(zip(n_trades.tolist(), total_return.tolist()))


class _SwitchingFee:
    """backtesting.py commission callable; the strategy sets `rate` per order."""

    rate = 0.0

    def __call__(self, size, price):
        return abs(size) * price * self.rate


def _bt_strategy():
    from backtesting import Strategy

    class RsiStrategy(Strategy):
        rsi = fee = None
        oversold, overbought, fee_rate = 30.0, 70.0, 0.001

        def init(self):
            pass  # self.I() would skip the first bar with a valid RSI (warm-up)

        def next(self):
            r = self.rsi[len(self.data) - 1]
            if not self.position:
                if r < self.oversold:
                    self.fee.rate = self.fee_rate / (1.0 - self.fee_rate)
                    self.buy(size=1.0 - 1e-10)
            elif r > self.overbought:
                self.fee.rate = self.fee_rate
                self.position.close()

    return RsiStrategy


def run_backtesting(data, p):
    from backtesting.lib import FractionalBacktest

    strategy, init = _bt_strategy(), p["initial_investment"]
    idx = data["index"]
    idx = idx.append(pd.DatetimeIndex([idx[-1] + (idx[-1] - idx[-2])]))  # padding bar
    out = []
    for close, rsi in zip(data["close"], data["rsi"]):
        c = np.append(close, close[-1])
        df = pd.DataFrame({"Open": c, "High": c, "Low": c, "Close": c, "Volume": 1.0}, index=idx)
        fee = _SwitchingFee()
        bt = FractionalBacktest(df, strategy, cash=init, commission=fee, trade_on_close=True,
                                fractional_unit=1e-12 * init / close.max())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "trades remain open" (ours marks them too)
            s = bt.run(rsi=np.append(rsi, np.nan), fee=fee, fee_rate=p["transaction_fee"] / 100,
                       oversold=p["oversold_threshold"], overbought=p["overbought_threshold"])
        out.append((int(s["# Trades"]), s["Equity Final [$]"] / init - 1.0))
    return out


def run_pandas(data, p):
    keep = 1.0 - p["transaction_fee"] / 100.0
    lo, hi, init = p["oversold_threshold"], p["overbought_threshold"], p["initial_investment"]
    out = []
    for close, rsi in zip(data["close"], data["rsi"]):
        df = pd.DataFrame({"close": close, "rsi": rsi})
        cash, units, long, trades = init, 0.0, False, 0
        for _, row in df.iterrows():
            if not long and row["rsi"] < lo:
                units, cash, long = cash * keep / row["close"], 0.0, True
            elif long and row["rsi"] > hi:
                cash, units, long = units * row["close"] * keep, 0.0, False
                trades += 1
        out.append((trades, (cash + units * df["close"].iloc[-1]) / init - 1.0))
    return out


RUNNERS = {"ours": run_ours, "vectorbt": run_vectorbt,
           "backtesting": run_backtesting, "pandas": run_pandas}
LABELS = {"ours": "ours (api.engine)", "vectorbt": "vectorbt (one 2-D call)",
          "backtesting": "backtesting.py", "pandas": "pandas iterrows loop"}


def subset(data, n):
    return {"close": data["close"][:n], "rsi": data["rsi"][:n], "index": data["index"]}


def version(module):
    try:
        return __import__(module).__version__
    except Exception as exc:  # noqa: BLE001 - report, do not crash the header
        return f"not importable ({type(exc).__name__})"


def cpu_model():
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def print_header(args):
    print(f"python {platform.python_version()}  numpy {np.__version__}  pandas {pd.__version__}  "
          f"numba {version('numba')}")
    print(f"vectorbt {version('vectorbt')}  backtesting {version('backtesting')}")
    print(f"machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores "
          f"({len(os.sched_getaffinity(0))} usable)")
    print(f"data: {args.cryptos} synthetic cryptos x {args.candles} daily candles (seed 42); "
          f"median of {args.repeats} runs\n")


def check_agreement(data, p, peers, n_slow):
    """Compare each peer with ours per crypto; True if all agree."""
    ours = run_ours(data, p)  # also warms up (e.g. numba JIT) before timing
    ok = True
    print("Agreement with ours (closed round trips; total return as the relative "
          "difference of final equity; drawdown NOT compared):")
    for peer in peers:
        n = n_slow if peer in SLOW else len(ours)
        res = RUNNERS[peer](subset(data, n), p)
        bad_trades = sum(a[0] != b[0] for a, b in zip(res, ours))
        rel = max(abs(a[1] - b[1]) / (1.0 + b[1]) for a, b in zip(res, ours))
        agree = bad_trades == 0 and rel <= TOLERANCE
        ok &= agree
        print(f"  {LABELS[peer]:<24} {n:>4} cryptos  trade-count mismatches {bad_trades:>3}  "
              f"max rel diff {rel:.1e}  {'OK' if agree else 'DISAGREE'}")
    total = sum(t for t, _ in ours)
    print(f"  (ours: {total} closed trades in total, {total / len(ours):.1f} per crypto)\n")
    return ok


def median_seconds(fn, data, p, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(data, p)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cryptos", type=int, default=211)
    ap.add_argument("--candles", type=int, default=1828)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    ap.add_argument("--slow-cryptos", type=int, default=20,
                    help="cryptos for backtesting.py and the pandas loop (scaled per crypto)")
    ap.add_argument("--skip", nargs="+", choices=PEERS, default=[], help="peers to leave out")
    args = ap.parse_args(argv)
    if min(args.cryptos, args.candles, args.repeats, args.slow_cryptos) < 1:
        ap.error("--cryptos, --candles, --repeats and --slow-cryptos must be >= 1")
    n_slow = min(args.slow_cryptos, args.cryptos)
    peers = [peer for peer in PEERS if peer not in args.skip]

    print_header(args)
    p = dict(RSI.defaults())
    cryptos = generate_demo_cryptos(n_cryptos=args.cryptos, n_candles=args.candles)
    closes = [np.array(c.close, dtype=np.float64) for c in cryptos]  # writable copies
    data = {"close": closes,
            "rsi": [compute_rsi(c, int(p["rsi_period"])) for c in closes],
            "index": pd.DatetimeIndex(cryptos[0].times)}
    print("Strategy:", ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                for k, v in p.items()), "(fee in %)\n")

    if not check_agreement(data, p, peers, n_slow):
        print("Peers disagree with ours: not timing anything.")
        return 1

    rows = []
    for name in ["ours", *peers]:
        n = n_slow if name in SLOW else args.cryptos
        secs = median_seconds(RUNNERS[name], subset(data, n), p, args.repeats)
        rows.append((name, n, secs, secs / n * 1e6))
    ours_us = rows[0][3]
    print(f"{'engine':<24} {'cryptos':>8} {'median run [ms]':>16} {'per crypto [µs]':>16} "
          f"{'vs ours':>9}")
    for name, n, secs, us in rows:
        scaled = " *" if name in SLOW else ""
        print(f"{LABELS[name]:<24} {n:>8} {secs * 1e3:>16.1f} {us:>16,.0f} "
              f"{us / ours_us:>8.1f}x{scaled}")
    if any(name in SLOW for name, *_ in rows):
        print(f"* run on the first {n_slow} of {args.cryptos} cryptos, scaled per crypto "
              "(--slow-cryptos)")
    print("ours includes RSI, validation and full metrics; peers get the RSI precomputed.")
    if "backtesting" in peers:
        print("backtesting.py logs equity before a trade day's fill, so its max drawdown "
              "differs slightly (not compared).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
