"""A parameter grid for /sweep: lists and ranges per parameter, expanded into every valid combination.

`{"rsi_period": [7, 14, 21], "oversold_threshold": {"start": 20, "stop": 40, "step": 5}}` with
`fixed` values for the rest. A range includes `stop` when it falls on a step (decimal
arithmetic, so 0.1 steps do not drift). Every value is checked against the
strategy's schema (errors name `grid.<name>.<i>`); a combination that breaks a
cross-field rule (fast < slow, ...) is skipped and counted, not an error.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from api.engine import StrategySpec
from api.services.errors import ValidationFailed
from api.services.parameters import validate_parameters

MAX_VALUES_PER_PARAMETER = 10_000
MAX_COMBINATIONS = 2_000_000  # expanded (each checked against the rules) at most; ~10 us each


class GridTooLarge(Exception):
    """The grid's combinations, counted before any is built, are more than it may expand."""

    def __init__(self, combinations: int) -> None:
        super().__init__(f"{combinations:,} combinations")
        self.combinations = combinations


def expand_grid(spec: StrategySpec, grid: Any, fixed: Any,
                max_combinations: int = MAX_COMBINATIONS) -> tuple[list[dict[str, Any]], int]:
    """(every valid parameter set, how many combinations broke a cross-field rule); ValidationFailed naming
    the field of a bad grid, range or value; GridTooLarge, before building any, when the combinations
    (the product of the axes' lengths) are more than max_combinations."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValidationFailed("grid must be an object of parameter -> values",
                               [{"field": "grid", "message": "must be a non-empty object of parameter -> list or "
                                                            "{start, stop, step}"}])
    fixed = {} if fixed is None else fixed
    if not isinstance(fixed, Mapping):
        raise ValidationFailed("fixed must be an object", [{"field": "fixed", "message": "must be an object"}])
    schema = spec.parameter_schema()
    errors: list[dict[str, str]] = []
    for name in sorted(set(grid) & set(fixed)):
        errors.append({"field": f"fixed.{name}", "message": "is also in grid; give it in one of them"})
    axes: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if name not in schema:
            errors.append({"field": f"grid.{name}", "message": f"unknown parameter; expected one of: "
                                                              f"{', '.join(schema)}"})
            continue
        listed = _values(name, values, schema[name], errors)
        checked = []
        for i, value in enumerate(listed):
            try:
                checked.append(validate_parameters({name: schema[name]}, {name: value})[name])
            except ValidationFailed as exc:
                errors.append({"field": f"grid.{name}.{i}", "message": exc.errors[0]["message"]})
        axes[name] = list(dict.fromkeys(checked))  # a value given twice runs once
    try:
        base = validate_parameters(schema, dict(fixed))  # fixed values alone (cross rules: per combination)
    except ValidationFailed as exc:
        errors.extend({"field": "fixed" + e["field"][len("parameters"):], "message": e["message"]}
                      for e in exc.errors)
        base = {}
    if errors:
        raise ValidationFailed("invalid grid", errors)
    sets, skipped = [], 0
    names = [p.name for p in spec.parameters if p.name in axes]  # the registry's order, whatever the JSON's
    combinations = math.prod(len(axes[n]) for n in names)
    if combinations > max_combinations:
        raise GridTooLarge(combinations)
    for combination in itertools.product(*(axes[n] for n in names)):
        params = {**base, **fixed, **dict(zip(names, combination))}
        try:
            sets.append(validate_parameters(schema, params, spec.check))
        except ValidationFailed:
            skipped += 1
    return sets, skipped


def _values(name: str, values: Any, rule: Mapping[str, Any], errors: list[dict[str, str]]) -> list[Any]:
    """The listed values, or those of a {start, stop, step} range."""
    if isinstance(values, list):
        if not values:
            errors.append({"field": f"grid.{name}", "message": "must list at least one value"})
        return values
    if not isinstance(values, Mapping) or set(values) != {"start", "stop", "step"}:
        errors.append({"field": f"grid.{name}", "message": "must be a list of values or {start, stop, step}"})
        return []
    try:
        start, stop, step = (Decimal(str(values[k])) for k in ("start", "stop", "step"))
    except (InvalidOperation, ValueError):
        errors.append({"field": f"grid.{name}", "message": "start, stop and step must be numbers"})
        return []
    if any(isinstance(values[k], bool) or not isinstance(values[k], (int, float)) for k in ("start", "stop", "step")):
        errors.append({"field": f"grid.{name}", "message": "start, stop and step must be numbers"})
        return []
    if not (start.is_finite() and stop.is_finite() and step.is_finite()):
        errors.append({"field": f"grid.{name}", "message": "start, stop and step must be finite numbers"})
        return []
    if not step > 0 or stop < start:
        errors.append({"field": f"grid.{name}", "message": "needs step > 0 and stop >= start"})
        return []
    if (stop - start) / step >= MAX_VALUES_PER_PARAMETER:  # before counting: a huge span is no list to build
        errors.append({"field": f"grid.{name}", "message": f"gives more than {MAX_VALUES_PER_PARAMETER} values"})
        return []
    count = int((stop - start) / step) + 1
    integer = rule.get("type") == "integer"
    out = [start + i * step for i in range(count)]
    return [int(v) if integer and v == v.to_integral_value() else float(v) for v in out]

