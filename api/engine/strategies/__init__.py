"""The catalog: DESIGN.md's seven strategies, ids fixed. Adding one is a module with `signals` and a `SPEC`."""
from __future__ import annotations

from ..registry import StrategySpec
from . import bollinger, buy_and_hold, donchian, macd, opening_range_breakout, rsi, sma_cross

CATALOG: tuple[StrategySpec, ...] = tuple(
    m.SPEC for m in (rsi, sma_cross, macd, bollinger, donchian, opening_range_breakout, buy_and_hold))
BY_ID: dict[int, StrategySpec] = {s.id: s for s in CATALOG}
STRATEGIES: dict[str, StrategySpec] = {s.code: s for s in CATALOG}


def get_strategy(key: int | str) -> StrategySpec:
    """A strategy by id or code; KeyError lists the known ones."""
    spec = BY_ID.get(key) if isinstance(key, int) and not isinstance(key, bool) else STRATEGIES.get(str(key))
    if spec is None:
        known = ", ".join(f"{s.id} {s.code}" for s in CATALOG)
        raise KeyError(f"unknown strategy {key!r}; known strategies: {known}")
    return spec
