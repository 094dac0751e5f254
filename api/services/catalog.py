"""The strategy catalog as the service publishes and stores it, all from the engine's registry.

`strategy_rows` is what the `strategies` table holds (migration 0009 writes
it, and every `migrate` run re-writes it, so a catalog change needs no
migration); the HTTP layer reads the catalog, the metric list and the
per-strategy JSON Schemas from here rather than from the engine.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Engine

from api.db import migrate
from api.db import repository as repo
from api.engine import CATALOG, METRICS, StrategySpec, get_strategy


def strategy_rows() -> list[dict[str, Any]]:
    """One `strategies` row per registered strategy."""
    return [{"id": s.id, "code": s.code, "name": s.name, "description": s.description,
             "parameter_schema": s.parameter_schema()} for s in CATALOG]


def sync_strategy_rows(conn: Connection) -> int:
    """Write the registry's rows into `strategies` (insert or update by id); how many rows."""
    return repo.upsert_strategies(conn, strategy_rows())


def list_strategies() -> list[dict[str, Any]]:
    """GET /api/strategies: every strategy with every parameter (type, default, bounds, enum, description)."""
    return strategy_rows()


def find_strategy(key: int | str) -> StrategySpec | None:
    """A strategy by id or code, or None."""
    try:
        return get_strategy(key)
    except KeyError:
        return None


def parameter_json_schemas() -> dict[int, dict[str, Any]]:
    """Each strategy's own `parameters` JSON Schema, by strategy id (for the OpenAPI document)."""
    return {s.id: s.json_schema() for s in CATALOG}


def metric_specs() -> list[dict[str, str]]:
    """Every metric a result carries: name, JSON type, formula."""
    return [{"name": m.name, "kind": m.kind, "description": m.description} for m in METRICS]


def upgrade_database(engine: Engine) -> None:
    """Migrate to head, then re-write the strategy rows from the registry (one transaction each)."""
    migrate.upgrade(engine)
    with engine.begin() as conn:
        sync_strategy_rows(conn)
