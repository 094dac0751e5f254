"""The strategy registry: the single source of each strategy's id, code, rule and parameter specs.

A strategy is a pure function ``signals(candles, params) -> (entry, exit)``
(boolean arrays, each decided with data up to and including that bar's
close) plus its own parameter specs and cross-field rules. The common
parameters (`parameters.COMMON_PARAMETERS`) come first in every strategy's
schema. The database rows, request validation and the OpenAPI document are
all written from here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .candles import Candles
from .parameters import COMMON_PARAMETERS, ParameterSpec

Signals = Callable[[Candles, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]
# (candles, settings, entries, exits) -> per-setting error or None: fills row j of the 2-D bool arrays for settings[j]
SignalRows = Callable[[Candles, Sequence[Mapping[str, Any]], np.ndarray, np.ndarray], list[Exception | None]]
CrossCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


def _no_rules(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class StrategySpec:
    """A strategy of the catalog: fixed id and code, its rule in words, its parameters and its signals."""

    id: int
    code: str
    name: str
    description: str
    own_parameters: tuple[ParameterSpec, ...]
    signals: Signals
    check: CrossCheck = field(default=_no_rules)
    inputs: frozenset[str] = frozenset({"close"})  # the candle fields `signals` reads
    # optional: the signals of many settings at once, for a grid (its `signals` must be this with one setting)
    signal_rows: SignalRows | None = None

    @property
    def parameters(self) -> tuple[ParameterSpec, ...]:
        """Every parameter: the common ones, then the strategy's own."""
        return COMMON_PARAMETERS + self.own_parameters

    def parameter_schema(self) -> dict[str, dict[str, Any]]:
        """The catalog's schema of every parameter, keyed by name, in order."""
        return {p.name: p.as_schema() for p in self.parameters}

    def json_schema(self) -> dict[str, Any]:
        """The `parameters` object of this strategy as JSON Schema (cross-field rules are in the description)."""
        return {"type": "object", "additionalProperties": False, "title": f"{self.code} parameters",
                "description": self.description,
                "properties": {p.name: p.json_schema() for p in self.parameters}}

    def defaults(self) -> dict[str, Any]:
        """Default values, used to fill parameters the client omitted."""
        return {p.name: p.default for p in self.parameters}


def fmt(value: Any) -> str:
    """A parameter value as a message shows it (10, 2.5, "close")."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def less_than(low: str, high: str) -> CrossCheck:
    """The cross-field rule params[low] < params[high], reported on `low`."""
    def check(params: Mapping[str, Any]) -> list[tuple[str, str]]:
        a, b = params.get(low), params.get(high)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not a < b:
            return [(low, f"must be less than {high} ({fmt(b)}), got {fmt(a)}")]
        return []
    return check
