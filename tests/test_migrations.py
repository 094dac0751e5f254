"""Alembic owns the schema: up from empty and back down both work."""
from __future__ import annotations

from sqlalchemy import inspect, text

from api.config import Settings
from api.db import migrate
from api.db.connection import db_config_for, make_engine
from api.config import REPO_ROOT
from api.db import repository as repo
from api.engine import CATALOG, METRIC_NAMES
from api.services.catalog import strategy_rows, upgrade_database
from tests.pg import assert_candle_series_matches_prices, fresh_database

TABLES = {"cryptocurrencies", "crypto_prices", "strategies", "crypto_backtest_results", "crypto_candle_series",
          "idempotency_keys"}


def test_upgrade_then_downgrade_on_empty_database(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url, prefix="bt_migr") as url:
        engine = make_engine(db_config_for(url, Settings()), pool_size=1)
        try:
            assert TABLES.isdisjoint(inspect(engine).get_table_names())
            migrate.upgrade(engine)
            assert TABLES <= set(inspect(engine).get_table_names())
            with engine.connect() as conn:
                assert migrate.current_revision(conn) == migrate.head_revision()
                codes = conn.execute(text("SELECT code FROM strategies ORDER BY id")).scalars().all()
                assert codes == [s.code for s in CATALOG]
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


def test_strategy_rows_are_written_from_the_registry(db_engine) -> None:
    """The `strategies` rows are the registry's: ids, codes and every parameter schema."""
    with db_engine.connect() as conn:
        stored = repo.stored_strategies(conn)
    assert stored == strategy_rows()
    assert [r["id"] for r in stored] == list(range(1, 8))


def test_result_columns_are_the_engines_metrics() -> None:
    assert repo.METRIC_COLUMNS == METRIC_NAMES


def test_no_migration_holds_a_literal_parameter_schema() -> None:
    for path in (REPO_ROOT / "migrations" / "versions").glob("*.py"):
        source = path.read_text()
        assert "oversold_threshold" not in source and '"exclusive_min"' not in source, path.name


def test_a_changed_catalog_is_rewritten_at_the_next_upgrade(empty_db) -> None:
    with empty_db.begin() as conn:
        conn.execute(text("UPDATE strategies SET parameter_schema = '{}'::jsonb, code = 'old' WHERE id = 2"))
        conn.execute(text("DELETE FROM strategies WHERE id = 7"))
    upgrade_database(empty_db)
    with empty_db.connect() as conn:
        assert repo.stored_strategies(conn) == strategy_rows()


def test_0009_downgrade_restores_the_one_rsi_strategy(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url, prefix="bt_migr9") as url:
        engine = make_engine(db_config_for(url, Settings()), pool_size=1)
        try:
            migrate.upgrade(engine)
            migrate.downgrade(engine, migrate_down_target())
            with engine.connect() as conn:
                rows = repo.stored_strategies(conn)
                cols = {c["name"] for c in inspect(conn).get_columns("crypto_backtest_results")}
            assert [(r["id"], r["code"]) for r in rows] == [(1, "rsi_buy_sell")]
            assert set(rows[0]["parameter_schema"]) == {"initial_investment", "transaction_fee", "rsi_period",
                                                        "oversold_threshold", "overbought_threshold"}
            assert "cagr" not in cols and "total_return" in cols
            migrate.upgrade(engine)
            with engine.connect() as conn:
                assert repo.stored_strategies(conn) == strategy_rows()
        finally:
            engine.dispose()


def migrate_down_target() -> str:
    """The revision before 0009."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config()).get_revision("0009").down_revision


def test_candle_series_follows_every_write_to_prices(empty_db) -> None:
    """The packed series is derived state: triggers must keep it equal to crypto_prices after any write."""
    import numpy as np

    from api.db import repository as repo

    t = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-11")).astype("datetime64[s]")
    px = np.linspace(10, 19, 10)
    with empty_db.begin() as conn:
        a = repo.insert_cryptocurrency(conn, "AAA", "A")
        b = repo.insert_cryptocurrency(conn, "BBB", "B")
        repo.copy_prices(conn, a, t, px, px, px, px, px, upsert=False)        # COPY straight in
        repo.copy_prices(conn, b, t[:5], px[:5], px[:5], px[:5], px[:5], px[:5])  # upsert path
    with empty_db.begin() as conn:
        assert_candle_series_matches_prices(conn)
        for day in range(10, 14):  # one candle at a time after the last: appended, not rebuilt
            conn.execute(text("INSERT INTO crypto_prices VALUES (:a, '2024-01-01'::timestamptz + make_interval(days => :d), "
                              "1, 1, 1, :c, 1)"), {"a": a, "d": day, "c": 20.0 + day})
            assert_candle_series_matches_prices(conn)
        conn.execute(text("INSERT INTO crypto_prices VALUES (:a, '2023-12-25', 1, 1, 1, 9.5, 1)"), {"a": a})  # before
        assert_candle_series_matches_prices(conn)
        # the new-crypto COPY writes the series itself; used on a crypto that has one, it rebuilds it
        later = t + np.timedelta64(40, "D")
        repo.copy_prices(conn, a, later, px, px, px, px, px, upsert=False)
        assert_candle_series_matches_prices(conn)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :a AND time >= :t"),
                     {"a": a, "t": later[0].astype(object)})
        assert_candle_series_matches_prices(conn)
        c = repo.insert_cryptocurrency(conn, "CCC", "C")
        # one statement, three cases: a new crypto (created), after a's end (appended), inside b (rebuilt)
        conn.execute(text("INSERT INTO crypto_prices VALUES (:c, '2024-03-02', 1, 1, 1, 7.0, 1), "
                          "(:a, '2024-01-20', 1, 1, 1, 30.0, 1), (:c, '2024-03-01', 1, 1, 1, 6.0, 1), "
                          "(:b, '2023-12-31', 1, 1, 1, 5.0, 1), (:a, '2024-01-19', 1, 1, 1, 29.0, 1)"),
                     {"a": a, "b": b, "c": c})
        assert_candle_series_matches_prices(conn)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :c OR (crypto_id = :b AND time < '2024-01-01') "
                          "OR (crypto_id = :a AND time >= '2024-01-19')"), {"a": a, "b": b, "c": c})
        assert_candle_series_matches_prices(conn)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :a AND time < '2024-01-01' "
                          "OR time >= '2024-01-11'"), {"a": a})
        assert_candle_series_matches_prices(conn)
        repo.copy_prices(conn, b, t[3:], px[3:] * 2, px[3:] * 2, px[3:] * 2, px[3:] * 2, px[3:])  # overlap
        assert_candle_series_matches_prices(conn)
        conn.execute(text("UPDATE crypto_prices SET close = close + 1 WHERE crypto_id = :a AND time > '2024-01-05'"),
                     {"a": a})
        assert_candle_series_matches_prices(conn)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :a AND time < '2024-01-03'"), {"a": a})
        assert_candle_series_matches_prices(conn)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :b"), {"b": b})
        assert_candle_series_matches_prices(conn)
        assert repo.load_candles(conn.connection.driver_connection, b).close.size == 0
        got = repo.load_candles(conn.connection.driver_connection, a)
        assert len(got) == 8 and got.time[0] == int(t[2].astype(np.int64))
        conn.execute(text("TRUNCATE crypto_prices"))
        assert_candle_series_matches_prices(conn)
        assert repo.total_candles(conn) == 0


def test_deleting_a_crypto_deletes_its_results_and_prices(demo_db) -> None:
    from api.db import repository as repo

    with demo_db.begin() as conn:
        crypto = repo.find_crypto(conn, symbol="SYN001")
        other = repo.find_crypto(conn, symbol="SYN002")
        for c in (crypto, other):
            repo.save_results(conn, "00000000-0000-0000-0000-000000000001", 1, {"rsi_period": 14},
                              [{"crypto_id": c["id"], "calculation_time_ms": 1.0, "error": None}])
    with demo_db.begin() as conn:
        conn.execute(text("DELETE FROM cryptocurrencies WHERE id = :id"), {"id": crypto["id"]})
    with demo_db.connect() as conn:
        left = conn.execute(text("SELECT crypto_id FROM crypto_backtest_results")).scalars().all()
        assert left == [other["id"]]
        assert conn.execute(text("SELECT count(*) FROM crypto_candle_series WHERE crypto_id = :id"),
                            {"id": crypto["id"]}).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM crypto_prices WHERE crypto_id = :id"),
                            {"id": crypto["id"]}).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM crypto_prices WHERE crypto_id = :id"),
                            {"id": other["id"]}).scalar_one() == 400
