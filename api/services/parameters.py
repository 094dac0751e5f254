"""Validate a strategy's parameters against its schema (generated from the engine's registry).

Strict on purpose: a quant who sends "14" or 1.5 for a period, or a NaN, gets
told which field is wrong rather than a silently coerced run. Missing keys
take the schema's defaults; the filled-in set is what the run and the stored
results record.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from api.services.errors import ValidationFailed

CrossCheck = Callable[[dict[str, Any]], list[tuple[str, str]]]


def validate_parameters(schema: Mapping[str, Mapping[str, Any]], parameters: Any,
                        cross_check: CrossCheck | None = None) -> dict[str, Any]:
    """Return the complete, typed parameter set or raise ValidationFailed naming every bad field."""
    if not isinstance(parameters, Mapping):
        raise ValidationFailed("parameters must be a JSON object",
                               [_err("parameters", f"must be an object, got {_json_type(parameters)}")])
    errors: list[dict[str, str]] = []
    unknown = sorted(set(parameters) - set(schema))
    for key in unknown:
        errors.append(_err(f"parameters.{key}", f"unknown parameter; expected one of: {', '.join(schema)}"))
    clean: dict[str, Any] = {}
    for name, rule in schema.items():
        if name not in parameters:
            clean[name] = _coerce_default(rule)
            continue
        value, problem = _check_value(parameters[name], rule)
        if problem:
            errors.append(_err(f"parameters.{name}", problem))
        else:
            clean[name] = value
    if not errors and cross_check is not None:
        errors.extend(_err(f"parameters.{f}", m) for f, m in cross_check(clean))
    if errors:
        raise ValidationFailed("invalid strategy parameters", errors)
    return clean


def _check_value(value: Any, rule: Mapping[str, Any]) -> tuple[Any, str | None]:
    kind = rule.get("type", "number")
    if value is None and rule.get("nullable"):
        return None, None
    if kind == "string":
        choices = list(rule.get("enum") or ())
        if not isinstance(value, str) or value not in choices:
            return None, f"must be one of {', '.join(repr(c) for c in choices)}, got {_json_type(value)}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        expected = "an integer" if kind == "integer" else "a number"
        return None, f"must be {expected}{' or null' if rule.get('nullable') else ''}, got {_json_type(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite number, got NaN or Infinity"
    if kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            return None, f"must be an integer, got {value!r}"
        value = int(value)
    else:
        value = float(value)
    lo, hi = rule.get("min"), rule.get("max")
    if lo is not None:
        if rule.get("exclusive_min") and not value > lo:
            return None, f"must be greater than {_fmt(lo)}, got {_fmt(value)}"
        if not rule.get("exclusive_min") and not value >= lo:
            return None, f"must be at least {_fmt(lo)}, got {_fmt(value)}"
    if hi is not None:
        if rule.get("exclusive_max") and not value < hi:
            return None, f"must be less than {_fmt(hi)}, got {_fmt(value)}"
        if not rule.get("exclusive_max") and not value <= hi:
            return None, f"must be at most {_fmt(hi)}, got {_fmt(value)}"
    return value, None


def _coerce_default(rule: Mapping[str, Any]) -> Any:
    default = rule.get("default")
    if default is None or rule.get("type") == "string":
        return default
    return int(default) if rule.get("type") == "integer" else float(default)


def _fmt(x: float) -> str:
    if isinstance(x, int) and abs(x) >= 10**15:  # 1e308 given for an integer: not 309 digits in a message
        return f"{float(x):.15g}"
    return f"{x:.15g}" if isinstance(x, float) else str(x)  # 1000001.0 is not "1e+06"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _err(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
