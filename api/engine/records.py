"""Building the engine's frozen result records cheaply (a batch builds several per crypto).

A frozen dataclass's generated __init__ pays one object.__setattr__ per
field; installing a complete field dict gives the very same object
(equality, repr, pickling, cached properties) at a fraction of the cost.
Only for the engine's own dataclasses, with no __post_init__ to run; every
field is given (defaults are not applied).
"""
from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

_new = object.__new__
_set = object.__setattr__


def record(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of the frozen dataclass `cls` with exactly `fields` (every field, by name)."""
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    return obj
