"""Parameter specs: the single source of every strategy parameter's type, bounds, default and meaning.

The database row of a strategy, the request validation and the OpenAPI
document are all generated from these specs. `COMMON_PARAMETERS` (money,
fees, execution and stops) belong to every strategy and are defined here once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ParameterType = Literal["integer", "number", "string"]


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: a bounded integer or number (optionally null = off), or a string from `enum`."""

    name: str
    type: ParameterType
    default: Any
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    description: str = ""
    enum: tuple[str, ...] | None = None
    nullable: bool = False

    def as_schema(self) -> dict[str, Any]:
        """The catalog's description of the parameter (GET /api/strategies, the stored row)."""
        schema: dict[str, Any] = {"type": self.type, "default": self.default, "description": self.description}
        if self.type == "string":
            schema["enum"] = list(self.enum or ())
        else:
            schema.update({"min": self.min, "max": self.max,
                           "exclusive_min": self.exclusive_min, "exclusive_max": self.exclusive_max})
        if self.nullable:
            schema["nullable"] = True
        return schema

    def json_schema(self) -> dict[str, Any]:
        """The same rules as JSON Schema 2020-12 (for OpenAPI 3.1)."""
        if self.type == "string":
            rule: dict[str, Any] = {"type": "string", "enum": list(self.enum or ())}
        else:
            rule = {"type": [self.type, "null"] if self.nullable else self.type}
            if self.min is not None:
                rule["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.min
            if self.max is not None:
                rule["exclusiveMaximum" if self.exclusive_max else "maximum"] = self.max
        rule["default"] = self.default
        rule["description"] = self.description
        return rule


COMMON_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("initial_investment", "number", 10000.0, 0.01, 1e12,
                  description="Cash at the start, in quote currency (USDT)."),
    ParameterSpec("transaction_fee", "number", 0.1, 0, 100, exclusive_max=True,
                  description="Fee per fill as a percent of notional (0.1 means 0.1 %)."),
    ParameterSpec("slippage_pct", "number", 0.0, 0, 100, exclusive_max=True,
                  description="Price slippage per fill in percent: buys fill at price x (1 + s), sells at "
                              "price x (1 - s), stop and take-profit fills included."),
    ParameterSpec("execution", "string", "close", enum=("close", "next_open"),
                  description="Where a decision made on a bar's close fills: at that close, or at the next "
                              "bar's open (a decision on the last bar is then not filled)."),
    ParameterSpec("stop_loss_pct", "number", None, 0, 100, exclusive_min=True, exclusive_max=True, nullable=True,
                  description="Stop-loss in percent below the entry fill price; null = none."),
    ParameterSpec("take_profit_pct", "number", None, 0, 1e6, exclusive_min=True, nullable=True,
                  description="Take-profit in percent above the entry fill price; null = none."),
    ParameterSpec("trailing_stop_pct", "number", None, 0, 100, exclusive_min=True, exclusive_max=True,
                  nullable=True,
                  description="Trailing stop in percent below the highest high since entry; null = none."),
)

COMMON_NAMES = frozenset(p.name for p in COMMON_PARAMETERS)
