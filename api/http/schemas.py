"""Request bodies as pydantic models: strict types, unknown fields rejected.

Strategy parameters are an open object here; their rules live with the
strategy (its stored schema) and are checked by the service.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BatchBacktestRequest(_Strict):
    """POST /api/crypto/backtest/all"""

    strategy_id: int = Field(ge=1, le=2**31 - 1)
    parameters: dict[str, Any]
    use_parallel: bool = True


class SingleBacktestRequest(_Strict):
    """POST /api/crypto/backtest: exactly one of crypto_id or symbol."""

    strategy_id: int = Field(ge=1, le=2**31 - 1)
    parameters: dict[str, Any]
    crypto_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    symbol: str | None = Field(default=None, pattern=SYMBOL_PATTERN)
