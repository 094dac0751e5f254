"""Performance metrics for a simulated backtest.

Every value is a plain Python float/int/bool or None so results serialize to
JSON without NaN/Infinity (which strict JSON parsers reject).
"""

import math

import numpy as np

from .simulate import SimulationResult


def _num(value: float) -> float | None:
    """Python float, or None when the value is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def _max_drawdown_pct(equity: np.ndarray) -> float | None:
    if not np.all(np.isfinite(equity)):
        return None
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, (peak - equity) / peak, 0.0)
    return _num(max(float(drawdown.max()), 0.0) * 100.0)


def _sharpe_sortino(
    equity: np.ndarray, bars_per_year: float
) -> tuple[float | None, float | None]:
    if equity.size < 2 or np.any(equity[:-1] <= 0):
        return None, None
    returns = equity[1:] / equity[:-1] - 1.0
    if not np.all(np.isfinite(returns)):
        return None, None
    scale = math.sqrt(bars_per_year)
    mean = float(returns.mean())

    sharpe = None
    if returns.size >= 2:
        std = float(returns.std(ddof=1))
        if std > 0:
            sharpe = _num(mean / std * scale)

    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    sortino = _num(mean * scale / downside) if downside > 0 else None
    return sharpe, sortino


def compute_metrics(
    close: np.ndarray,
    sim: SimulationResult,
    initial_investment: float,
    fee_rate: float,
    bars_per_year: float,
) -> dict[str, float | int | bool | None]:
    """Summary statistics the API reports for one backtest run."""
    close = np.asarray(close, dtype=np.float64)
    equity = np.asarray(sim.equity, dtype=np.float64)
    if bars_per_year <= 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")

    closed = [t for t in sim.trades if not t.is_open]
    pnls = [t.pnl for t in closed]
    gross_profit = sum(p for p in pnls if p > 0)
    gross_loss = -sum(p for p in pnls if p < 0)

    hold_value = initial_investment * (1.0 - fee_rate) / close[0] * close[-1]
    sharpe, sortino = _sharpe_sortino(equity, bars_per_year)

    return {
        "total_return": _num((sim.final_value / initial_investment - 1.0) * 100.0),
        "final_value": _num(sim.final_value),
        "buy_and_hold_return": _num((hold_value / initial_investment - 1.0) * 100.0),
        "num_trades": len(closed),
        "win_rate": (
            _num(sum(p > 0 for p in pnls) / len(pnls) * 100.0) if pnls else 0.0
        ),
        "max_drawdown": _max_drawdown_pct(equity),
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "exposure": _num(np.mean(sim.position) * 100.0),
        "profit_factor": _num(gross_profit / gross_loss) if gross_loss > 0 else None,
        "open_position": any(t.is_open for t in sim.trades),
    }
