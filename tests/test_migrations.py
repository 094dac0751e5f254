"""Alembic owns the schema: up from empty and back down both work."""
from __future__ import annotations

from sqlalchemy import inspect, text

from api.config import Settings
from api.db import migrate
from api.db.connection import db_config_for, make_engine
from api.engine import get_strategy
from tests.pg import fresh_database

TABLES = {"cryptocurrencies", "crypto_prices", "strategies", "crypto_backtest_results"}


def test_upgrade_then_downgrade_on_empty_database(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url, prefix="bt_migr") as url:
        engine = make_engine(db_config_for(url, Settings()), pool_size=1)
        try:
            assert TABLES.isdisjoint(inspect(engine).get_table_names())
            migrate.upgrade(engine)
            assert TABLES <= set(inspect(engine).get_table_names())
            with engine.connect() as conn:
                assert migrate.current_revision(conn) == migrate.head_revision()
                row = conn.execute(text("SELECT id, code FROM strategies WHERE id = 1")).one()
                assert row.code == "rsi_buy_sell"
                pk = inspect(conn).get_pk_constraint("crypto_prices")["constrained_columns"]
                assert pk == ["crypto_id", "time"]
            migrate.downgrade(engine)
            assert TABLES.isdisjoint(inspect(engine).get_table_names())
            with engine.connect() as conn:
                assert migrate.current_revision(conn) is None
            migrate.upgrade(engine)  # and up again: downgrade left nothing behind
            assert TABLES <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()


def test_stored_rsi_schema_matches_the_engine(db_engine) -> None:
    """The migration's literal copy of the schema must not drift from the engine's."""
    with db_engine.connect() as conn:
        stored = conn.execute(text("SELECT parameter_schema FROM strategies WHERE id = 1")).scalar_one()
    assert stored == get_strategy("rsi_buy_sell").parameter_schema()
