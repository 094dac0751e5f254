"""A slow, obvious reference implementation of the backtest engine, written from DESIGN.md alone.

Nothing here imports `api.engine`: the rules come from DESIGN.md's sections
"Strategy 1", "Metrics" and "Strategies and execution", quoted next to the
code that implements them. Indicators come from TA-Lib (test-only
dependency); everything else is plain Python loops over plain lists.

Where DESIGN.md is silent the choice is written down here (search for
"SILENT:").

Public functions:
* `simulate(open_, high, low, close, entry, exit_, params)` -> `OracleRun`
* `metrics(run, close, time, params, bars_per_year)` -> dict of every metric
* `signals(code, open_, high, low, close, time, interval_seconds, params)` -> (entry, exit)
* `backtest(code, open_, high, low, close, time, interval_seconds, params, bars_per_year)`
  -> (metrics, trades, equity)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import talib


class OracleInsufficientData(Exception):
    """'a crypto too short to give a single signal value gets insufficient_data'."""


@dataclass
class OracleTrade:
    entry_bar: int
    entry_price: float          # the fill, slippage included
    units: float
    entry_value: float          # the cash committed at entry (fee included)
    entry_fee: float
    exit_bar: int | None = None
    exit_price: float | None = None
    exit_value: float = 0.0     # cash after the exit fee; an open trade: units x last close
    exit_fee: float = 0.0
    pnl: float = 0.0
    return_pct: float = 0.0
    bars_held: int = 0
    exit_reason: str = ""
    is_open: bool = False


@dataclass
class OracleRun:
    equity: list[float]
    trades: list[OracleTrade]
    held_at_close: list[bool] = field(default_factory=list)   # position held at bar t's close
    initial: float = 0.0
    fee: float = 0.0


def _pct(params, name):
    value = params.get(name)
    return None if value is None else float(value) / 100.0


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------
def simulate(open_, high, low, close, entry, exit_, params) -> OracleRun:
    open_, high, low, close = (list(map(float, a)) for a in (open_, high, low, close))
    entry, exit_ = list(map(bool, entry)), list(map(bool, exit_))
    n = len(close)
    initial = float(params["initial_investment"])
    # "transaction_fee 0.1 (a percent: 0.1 means 0.1 % of notional per fill)"
    fee = float(params["transaction_fee"]) / 100.0
    slip = float(params.get("slippage_pct") or 0.0) / 100.0
    next_open = params.get("execution", "close") == "next_open"
    sl_pct = _pct(params, "stop_loss_pct")
    tp_pct = _pct(params, "take_profit_pct")
    trail_pct = _pct(params, "trailing_stop_pct")

    cash = initial
    units = 0.0
    trade: OracleTrade | None = None   # the open trade, if long
    trades: list[OracleTrade] = []
    equity: list[float] = []
    held: list[bool] = []
    peak = 0.0
    pending = None                     # "entry" or "exit", decided on the previous close (next_open)

    def buy(t, price):
        nonlocal cash, units, trade, peak
        # "Buy fills at price x (1 + slippage)"; "units = cash*(1-fee)/buy_fill"
        fill = price * (1.0 + slip)
        units = cash * (1.0 - fee) / fill
        trade = OracleTrade(entry_bar=t, entry_price=fill, units=units, entry_value=cash, entry_fee=cash * fee)
        cash = 0.0
        # "peak starts at the entry fill"
        peak = fill

    def sell(t, price, reason):
        nonlocal cash, units, trade
        # "sells at price x (1 - slippage)"; "cash = units*sell_fill*(1-fee)"
        fill = price * (1.0 - slip)
        gross = units * fill
        cash = gross * (1.0 - fee)
        trade.exit_bar = t
        trade.exit_price = fill
        trade.exit_value = cash
        trade.exit_fee = gross * fee
        trade.exit_reason = reason
        # "bars_held (exit fill bar - entry fill bar)"
        trade.bars_held = t - trade.entry_bar
        trades.append(trade)
        trade = None
        units = 0.0

    for t in range(n):
        exited_this_bar = False

        # "With execution "next_open" ... at open[t+1]"; "a signal exit filled at open[t+1] comes
        # before any stop on that bar."
        if next_open and pending is not None:
            if pending == "exit":
                sell(t, open_[t], "signal")
                exited_this_bar = True
            else:
                buy(t, open_[t])
            pending = None

        # "Stops are checked on every bar after the entry bar ("close"), or from the entry bar
        # itself ("next_open": the fill happened at its open)."
        if trade is not None and (next_open or t > trade.entry_bar) and (
                sl_pct is not None or tp_pct is not None or trail_pct is not None):
            entry_fill = trade.entry_price
            # "SL = entry x (1 - stop_loss_pct/100)", "trail = peak x (1 - trailing_stop_pct/100)",
            # "The stop level is max(SL, trail)"; exit_reason "whichever level was higher; a tie is stop_loss"
            sl = entry_fill * (1.0 - sl_pct) if sl_pct is not None else None
            trail = peak * (1.0 - trail_pct) if trail_pct is not None else None
            if sl is not None and trail is not None:
                stop, stop_reason = (trail, "trailing_stop") if trail > sl else (sl, "stop_loss")
            elif sl is not None:
                stop, stop_reason = sl, "stop_loss"
            elif trail is not None:
                stop, stop_reason = trail, "trailing_stop"
            else:
                stop, stop_reason = None, None
            tp = entry_fill * (1.0 + tp_pct) if tp_pct is not None else None
            # "On a checked bar, in this order: open <= stop -> fill at the open; low <= stop -> fill
            # at the stop; open >= TP -> fill at the open; high >= TP -> fill at TP."
            hit = None
            if stop is not None and open_[t] <= stop:
                hit = (open_[t], stop_reason)
            elif stop is not None and low[t] <= stop:
                hit = (stop, stop_reason)
            elif tp is not None and open_[t] >= tp:
                hit = (open_[t], "take_profit")
            elif tp is not None and high[t] >= tp:
                hit = (tp, "take_profit")
            if hit is not None:
                # "Every fill pays slippage and the fee, stop and take-profit fills included."
                sell(t, hit[0], hit[1])
                exited_this_bar = True
            else:
                # "peak ... rises with each checked bar's high AFTER that bar is checked"
                peak = max(peak, high[t])

        # The decision on bar t's close: "While flat, entry[t] opens; while long, exit[t] closes."
        # SILENT: one decision per bar - a bar that starts its close decision long only looks at
        # exit[t] (a signal exit at the close under "close" does not also open on entry[t]).
        if trade is not None:
            if exit_[t]:
                if not next_open:
                    sell(t, close[t], "signal")                 # "the fill is at close[t]"
                elif t + 1 < n:
                    pending = "exit"                            # "a decision on the last bar is not filled"
        elif entry[t] and not exited_this_bar:
            # "A bar on which any exit filled (stop, trailing stop, take-profit, or a signal exit
            # filled at its open under "next_open") decides no new entry at its close."
            if not next_open:
                buy(t, close[t])
            elif t + 1 < n:
                pending = "entry"

        # "The equity curve has one value per bar: cash plus units times that bar's close, after
        # that bar's fill."
        equity.append(cash + units * close[t])
        held.append(trade is not None)

    if trade is not None:
        # "At the end an open position is marked to market at the last close (no exit fee) and
        # reported as open"; exit_reason "end"
        trade.exit_value = units * close[n - 1]
        trade.exit_fee = 0.0
        trade.exit_reason = "end"
        trade.is_open = True
        trade.bars_held = (n - 1) - trade.entry_bar   # SILENT: an open trade is held to the last bar
        trades.append(trade)

    for tr in trades:
        # "pnl", "return_pct (pnl over the cash committed at entry, fee included)"
        tr.pnl = tr.exit_value - tr.entry_value
        tr.return_pct = tr.pnl / tr.entry_value * 100.0
    return OracleRun(equity, trades, held, initial, fee)


# --------------------------------------------------------------------------------------------
# The metrics
# --------------------------------------------------------------------------------------------
def _mean(xs):
    return math.fsum(xs) / len(xs)


def _std_ddof1(xs):
    m = _mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def metrics(run: OracleRun, close, time, params, bars_per_year) -> dict:
    close = list(map(float, close))
    equity = run.equity
    n = len(equity)
    initial = run.initial
    fee = run.fee
    closed = [t for t in run.trades if not t.is_open]
    out = {}

    final_value = equity[-1]
    # "total_return % = (final_value/initial_investment - 1)*100; final_value"
    out["final_value"] = final_value
    out["total_return"] = (final_value / initial - 1.0) * 100.0
    # "buy_and_hold_return % (buy at the first close paying the fee, value at the last close)";
    # "does not change with execution or slippage"
    hold_units = initial * (1.0 - fee) / close[0]
    out["buy_and_hold_return"] = (hold_units * close[-1] / initial - 1.0) * 100.0
    # "num_trades = closed round trips"
    out["num_trades"] = len(closed)
    # "win_rate % of closed round trips with net profit > 0 after both fees (0 when none)"
    out["win_rate"] = (sum(1 for t in closed if t.pnl > 0) / len(closed) * 100.0) if closed else 0.0

    # "max_drawdown % = largest peak-to-trough fall of the equity curve, as a positive number"
    # (the curve is the per-bar values; the running peak starts at the first bar's value)
    peak = equity[0]
    mdd = 0.0
    for e in equity:
        peak = max(peak, e)
        mdd = max(mdd, (peak - e) / peak)
    out["max_drawdown"] = mdd * 100.0

    # "per-bar equity returns"
    returns = [equity[t] / equity[t - 1] - 1.0 for t in range(1, n)]
    scale = math.sqrt(bars_per_year)
    # "sharpe_ratio = mean/std (ddof=1) ... times sqrt(bars per year), null when there are fewer
    # than two returns or std is 0"
    sharpe = None
    if len(returns) >= 2:
        sd = _std_ddof1(returns)
        if sd != 0.0:
            sharpe = _mean(returns) / sd * scale
    out["sharpe_ratio"] = sharpe
    # "sortino_ratio = mean times sqrt(bars per year) over the root mean square of min(return, 0)
    # taken over all returns, null when that is 0"
    sortino = None
    if returns:
        rms = math.sqrt(_mean([min(r, 0.0) ** 2 for r in returns]))
        if rms != 0.0:
            sortino = _mean(returns) * scale / rms
    out["sortino_ratio"] = sortino
    # "exposure % of bars at whose close a position is held"
    out["exposure"] = sum(run.held_at_close) / n * 100.0
    # "profit_factor = gross profit / gross loss of closed round trips (null when no loss)"
    gross_profit = math.fsum(t.pnl for t in closed if t.pnl > 0)
    gross_loss = -math.fsum(t.pnl for t in closed if t.pnl < 0)
    out["profit_factor"] = gross_profit / gross_loss if gross_loss > 0 else None
    # (the engine also reports whether the last trade is still open)
    out["open_position"] = any(t.is_open for t in run.trades)

    # "total_fees (every fee paid, in quote currency, the open position's entry fee included)"
    out["total_fees"] = math.fsum(t.entry_fee + t.exit_fee for t in run.trades)
    # "cagr % = ((final/initial)^(365/days) - 1) x 100 with days = (last candle time - first candle
    # time) in seconds / 86,400 (fractional), null under 30 days"
    days = (int(time[-1]) - int(time[0])) / 86_400.0
    cagr = None if days < 30.0 else ((final_value / initial) ** (365.0 / days) - 1.0) * 100.0
    out["cagr"] = cagr
    # "calmar_ratio = cagr / max_drawdown (null when max_drawdown is 0)"
    out["calmar_ratio"] = None if cagr is None or out["max_drawdown"] == 0.0 else cagr / out["max_drawdown"]
    # "sqn = sqrt(n) x mean(pnl) / std(pnl, ddof=1) over closed trades (null under 2 or std 0)"
    sqn = None
    if len(closed) >= 2:
        pnls = [t.pnl for t in closed]
        sd = _std_ddof1(pnls)
        if sd != 0.0:
            sqn = math.sqrt(len(pnls)) * _mean(pnls) / sd
    out["sqn"] = sqn
    # "avg_trade_return, best_trade, worst_trade % over closed trades' return_pct (null when none)"
    rets = [t.return_pct for t in closed]
    out["avg_trade_return"] = _mean(rets) if rets else None
    out["best_trade"] = max(rets) if rets else None
    out["worst_trade"] = min(rets) if rets else None
    # "max_drawdown_duration = the longest index difference from the last bar at a running equity
    # peak to the first later bar back at or above that peak (or to the last bar if it never
    # recovers), 0 when the equity never falls below a peak"
    longest = 0
    for p in range(n - 1):
        at_running_peak = equity[p] >= max(equity[:p + 1])
        last_at_peak = equity[p + 1] < equity[p]          # the next bar falls below it
        if at_running_peak and last_at_peak:
            back = next((j for j in range(p + 1, n) if equity[j] >= equity[p]), n - 1)
            longest = max(longest, back - p)
    out["max_drawdown_duration"] = longest
    # "avg_bars_held over closed trades (null when none)"
    out["avg_bars_held"] = _mean([t.bars_held for t in closed]) if closed else None
    return out


# --------------------------------------------------------------------------------------------
# The strategies' signals ("each decided with data up to and including bar t's close";
# "A value needing history that does not exist yet (warm-up) is not a signal")
# --------------------------------------------------------------------------------------------
def _defined(*values):
    return all(v is not None and not math.isnan(v) for v in values)


def _crosses(a, b, above):
    """a crosses b: above: a[t] > b[t] and a[t-1] <= b[t-1]; below: a[t] < b[t] and a[t-1] >= b[t-1]."""
    n = len(a)
    out = [False] * n
    for t in range(1, n):
        if _defined(a[t], b[t], a[t - 1], b[t - 1]):
            if above:
                out[t] = a[t] > b[t] and a[t - 1] <= b[t - 1]
            else:
                out[t] = a[t] < b[t] and a[t - 1] >= b[t - 1]
    return out


def _sma(close, period):
    return [float(v) for v in talib.SMA(np.asarray(close, dtype=float), timeperiod=period)]


def _rolling(values, period, kind):
    """max/min of values[t-period+1 .. t] (TA-Lib MAX/MIN; period 1, which TA-Lib refuses, is the value)."""
    arr = np.asarray(values, dtype=float)
    if period == 1:
        return list(map(float, arr))
    fn = talib.MAX if kind == "max" else talib.MIN
    return [float(v) for v in fn(arr, timeperiod=period)]


def signals(code, open_, high, low, close, time, interval_seconds, params):
    close = [float(c) for c in close]
    n = len(close)
    c = np.asarray(close, dtype=float)

    if code == "rsi":
        # "the first value is at bar index rsi_period"; entry = RSI < oversold, exit = RSI > overbought
        p = int(params["rsi_period"])
        if n < p + 1:
            raise OracleInsufficientData(code)
        r = [float(v) for v in talib.RSI(c, timeperiod=p)]
        entry = [_defined(v) and v < float(params["oversold_threshold"]) for v in r]
        exit_ = [_defined(v) and v > float(params["overbought_threshold"]) for v in r]
        return entry, exit_

    if code == "sma_cross":
        # "entry[t] = SMA_fast[t] > SMA_slow[t] and SMA_fast[t-1] <= SMA_slow[t-1]; exit is the
        # opposite cross (< now, >= before)" - the first cross value needs SMA_slow[t-1]: t = slow
        fast, slow = int(params["fast_period"]), int(params["slow_period"])
        if n < slow + 1:
            raise OracleInsufficientData(code)
        f, s = _sma(close, fast), _sma(close, slow)
        return _crosses(f, s, True), _crosses(f, s, False)

    if code == "macd":
        # "TA-Lib MACD; entry = MACD line crosses above its signal line (> now, <= before)"
        fast, slow, sig = int(params["fast_period"]), int(params["slow_period"]), int(params["signal_period"])
        m, s, _ = talib.MACD(c, fastperiod=fast, slowperiod=slow, signalperiod=sig)
        m, s = [float(v) for v in m], [float(v) for v in s]
        first = next((t for t in range(n) if _defined(m[t], s[t])), None)
        if first is None or first + 1 >= n:      # no cross can be evaluated
            raise OracleInsufficientData(code)
        return _crosses(m, s, True), _crosses(m, s, False)

    if code == "bollinger":
        # "TA-Lib BBANDS with SMA and population std; entry = close < lower band, exit = close > the
        # chosen band"
        p, k = int(params["period"]), float(params["num_std"])
        if n < p:
            raise OracleInsufficientData(code)
        up, mid, lo = talib.BBANDS(c, timeperiod=p, nbdevup=k, nbdevdn=k, matype=0)
        band = mid if params["exit_band"] == "middle" else up
        entry = [_defined(lo[t]) and close[t] < lo[t] for t in range(n)]
        exit_ = [_defined(band[t]) and close[t] > band[t] for t in range(n)]
        return entry, exit_

    if code == "donchian":
        # "entry[t] = close[t] > max(high[t-entry_period .. t-1]); exit[t] = close[t] <
        # min(low[t-exit_period .. t-1])"
        ep, xp = int(params["entry_period"]), int(params["exit_period"])
        if n < ep + 1:     # SILENT-ish: the entry channel needs entry_period prior bars
            raise OracleInsufficientData(code)
        hi = _rolling(high, ep, "max")   # hi[t-1] = max(high[t-ep .. t-1])
        lo = _rolling(low, xp, "min")
        entry = [t >= ep and close[t] > hi[t - 1] for t in range(n)]
        exit_ = [t >= xp and close[t] < lo[t - 1] for t in range(n)]
        # cross-check the TA-Lib channel against a plain max/min of the slice
        for t in range(n):
            if t >= ep:
                assert hi[t - 1] == max(float(h) for h in high[t - ep:t])
            if t >= xp:
                assert lo[t - 1] == min(float(v) for v in low[t - xp:t])
        return entry, exit_

    if code == "opening_range_breakout":
        return _orb(high, low, close, time, interval_seconds, params)

    if code == "buy_and_hold":
        # "entry[0] true, exit never"
        if n < 1:
            raise OracleInsufficientData(code)
        return [t == 0 for t in range(n)], [False] * n

    raise KeyError(code)


def _orb(high, low, close, time, interval_seconds, params):
    n = len(close)
    start_hour = int(params["session_start_hour"])
    range_minutes = int(params["range_minutes"])
    session_hours = int(params["session_hours"])
    # "Needs candles shorter than range_minutes (else the crypto gets insufficient_data)"
    if interval_seconds >= range_minutes * 60:
        raise OracleInsufficientData("opening_range_breakout: candles not shorter than the range")

    # "sessions are the UTC windows [start, start + session_hours) beginning at session_start_hour
    # each day"
    def session_of(ts):
        moment = datetime.fromtimestamp(int(ts), tz=timezone.utc)
        day_start = moment.replace(hour=start_hour, minute=0, second=0, microsecond=0)
        if day_start > moment:
            day_start -= timedelta(days=1)
        if moment < day_start + timedelta(hours=session_hours):
            return day_start
        return None          # outside every session

    sessions = [session_of(ts) for ts in time]
    times = [datetime.fromtimestamp(int(ts), tz=timezone.utc) for ts in time]
    interval = timedelta(seconds=int(interval_seconds))
    range_len = timedelta(minutes=range_minutes)
    session_len = timedelta(hours=session_hours)

    # "the range is the max high / min low of the bars whose open time lies in the first
    # range_minutes of the session"
    range_high, range_low = {}, {}
    for t in range(n):
        s = sessions[t]
        if s is not None and times[t] < s + range_len:
            range_high[s] = max(range_high.get(s, -math.inf), float(high[t]))
            range_low[s] = min(range_low.get(s, math.inf), float(low[t]))

    # "A value needing history that does not exist yet (warm-up) is not a signal; a crypto too short
    # to give a single signal value gets insufficient_data": a bar has a signal value when its
    # session's range is known (it lies after the range) or when it is the session's last bar.
    def has_value(t):
        s = sessions[t]
        return s is not None and ((times[t] >= s + range_len and s in range_high)
                                  or times[t] + interval >= s + session_len)
    if not any(has_value(t) for t in range(n)):
        raise OracleInsufficientData("opening_range_breakout: no bar after an opening range")

    entry = [False] * n
    exit_ = [False] * n
    entered_sessions = set()
    for t in range(n):
        s = sessions[t]
        if s is None:
            continue
        # "t is the session's last bar: the bar whose open time + candle interval reaches the
        # session's end (a day whose last bar is missing has no such bar)"
        is_last = times[t] + interval >= s + session_len
        after_range = times[t] >= s + range_len and s in range_high
        if after_range:
            # "entry[t] is true at the FIRST bar of the session after the range whose close > range
            # high, the session's last bar excepted (one entry per session)"
            if float(close[t]) > range_high[s] and not is_last and s not in entered_sessions:
                entry[t] = True
                entered_sessions.add(s)
            # "exit[t] = close < range low, or t is the session's last bar"
            if float(close[t]) < range_low[s]:
                exit_[t] = True
        if is_last:
            exit_[t] = True
    return entry, exit_


# --------------------------------------------------------------------------------------------
# One backtest
# --------------------------------------------------------------------------------------------
def backtest(code, open_, high, low, close, time, interval_seconds, params, bars_per_year):
    entry, exit_ = signals(code, open_, high, low, close, time, interval_seconds, params)
    run = simulate(open_, high, low, close, entry, exit_, params)
    return metrics(run, close, time, params, bars_per_year), run.trades, run.equity
