"""Packed candle series: the packed per-crypto series carries every OHLCV field and each candle's time.

Strategies and the simulator need open, high, low, close, volume and the
candle open times, not the closes alone. crypto_close_series (0002, 0005,
0007) becomes crypto_candle_series: ONE bytea per field and crypto, each the
field's values in time order, big-endian:

    times   int8 epoch seconds   int8send(extract(epoch FROM time)::bigint)
    opens, highs, lows, closes, volumes   float8send(open), ...

(string_agg(... ORDER BY time) per field, as the triggers build them), plus
first_time, last_time and candle_count. A column per field lets a run read
only the fields it needs: most need the closes alone, and reading whole
48-byte candles made the RSI batch ~2x (daily) to ~6x (hourly) slower than
0007's closes. Every column's storage stays EXTERNAL (packed floats barely
compress; an uncompressed TOAST value is read as is). The triggers keep their
0007 shape, renamed to say candle series, and aggregate all six fields in one
pass: the insert trigger appends rows that all come after the series' end
(each column concatenated), creates a new crypto's series from its
aggregates, and rebuilds otherwise; `SET LOCAL app.candle_series_by_caller =
'on'` tells it that the caller (the loader's COPY of a new crypto) writes the
series itself; update and delete rebuild; truncate empties the series. The
series of every crypto is built again from crypto_prices, which stays the
source of truth; the downgrade rebuilds 0007's close series the same way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (column, the bytes of one candle's value in it); crypto_prices' columns are all NOT NULL
_CANDLE_COLUMNS = (
    ("times", "int8send(extract(epoch FROM time)::bigint)"),
    ("opens", "float8send(open)"),
    ("highs", "float8send(high)"),
    ("lows", "float8send(low)"),
    ("closes", "float8send(close)"),
    ("volumes", "float8send(volume)"),
)
_CLOSE_COLUMNS = (("closes", "float8send(close)"),)  # 0007's


def _series_table(name: str, columns: tuple[tuple[str, str], ...], count: str) -> None:
    op.create_table(
        name,
        sa.Column("crypto_id", sa.Integer, sa.ForeignKey("cryptocurrencies.id", ondelete="CASCADE"),
                  primary_key=True),
        *(sa.Column(column, sa.LargeBinary, nullable=False) for column, _ in columns),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(count, sa.Integer, nullable=False),
    )
    for column, _ in columns:
        op.execute(f"ALTER TABLE {name} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def _functions(*, table: str, columns: tuple[tuple[str, str], ...], count: str, prefix: str, setting: str) -> None:
    """refresh_<prefix>(ids), the four trigger functions and their triggers, as 0002/0005/0007 shaped them."""
    names = ", ".join(column for column, _ in columns)
    aggregates = ", ".join(f"string_agg({value}, ''::bytea ORDER BY time)" for _, value in columns)
    aggregates_as = ", ".join(f"string_agg({value}, ''::bytea ORDER BY time) AS {column}" for column, value in columns)
    excluded = ", ".join(f"{column} = EXCLUDED.{column}" for column, _ in columns)
    new_values = ", ".join(f"a.{column}" for column, _ in columns)
    appended = ", ".join(f"{column} = {column} || a.{column}" for column, _ in columns)
    op.execute(f"""
        CREATE FUNCTION refresh_{prefix}(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            -- one writer per crypto at a time, so the aggregate below sees every committed row
            PERFORM 1 FROM cryptocurrencies WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
            DELETE FROM {table} s WHERE s.crypto_id = ANY(ids)
                AND NOT EXISTS (SELECT 1 FROM crypto_prices p WHERE p.crypto_id = s.crypto_id);
            INSERT INTO {table} (crypto_id, {names}, first_time, last_time, {count})
            SELECT crypto_id, {aggregates}, min(time), max(time), count(*)
            FROM crypto_prices WHERE crypto_id = ANY(ids) GROUP BY crypto_id
            ON CONFLICT (crypto_id) DO UPDATE SET {excluded}, first_time = EXCLUDED.first_time,
                last_time = EXCLUDED.last_time, {count} = EXCLUDED.{count};
        END $$
    """)
    op.execute(f"""
        CREATE FUNCTION {prefix}_after_insert() RETURNS trigger LANGUAGE plpgsql
        SET work_mem = '256MB' AS $$
        DECLARE
            a record;
            last_old timestamptz;
        BEGIN
            IF current_setting('{setting}', true) = 'on' THEN
                RETURN NULL;  -- the loader writes this statement's series itself
            END IF;
            FOR a IN SELECT crypto_id, {aggregates_as},
                            min(time) AS first_new, max(time) AS last_new, count(*) AS k
                     FROM new_rows GROUP BY crypto_id ORDER BY crypto_id LOOP
                PERFORM 1 FROM cryptocurrencies WHERE id = a.crypto_id FOR UPDATE;
                SELECT last_time INTO last_old FROM {table} WHERE crypto_id = a.crypto_id;
                IF NOT FOUND THEN  -- no series: these are the crypto's first candles
                    INSERT INTO {table} (crypto_id, {names}, first_time, last_time, {count})
                    VALUES (a.crypto_id, {new_values}, a.first_new, a.last_new, a.k);
                ELSIF a.first_new > last_old THEN
                    UPDATE {table}
                    SET {appended}, last_time = a.last_new, {count} = {count} + a.k
                    WHERE crypto_id = a.crypto_id;
                ELSE
                    PERFORM refresh_{prefix}(ARRAY[a.crypto_id]);
                END IF;
            END LOOP;
            RETURN NULL;
        END $$
    """)
    op.execute(f"""
        CREATE FUNCTION {prefix}_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_{prefix}(ARRAY(SELECT crypto_id FROM new_rows UNION SELECT crypto_id FROM old_rows));
            RETURN NULL;
        END $$
    """)
    op.execute(f"""
        CREATE FUNCTION {prefix}_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_{prefix}(ARRAY(SELECT DISTINCT crypto_id FROM old_rows));
            RETURN NULL;
        END $$
    """)
    op.execute(f"""
        CREATE FUNCTION {prefix}_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM {table};
            RETURN NULL;
        END $$
    """)
    op.execute(f"CREATE TRIGGER {prefix}_insert AFTER INSERT ON crypto_prices REFERENCING NEW TABLE AS new_rows "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_after_insert()")
    op.execute(f"CREATE TRIGGER {prefix}_update AFTER UPDATE ON crypto_prices "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_after_update()")
    op.execute(f"CREATE TRIGGER {prefix}_delete AFTER DELETE ON crypto_prices REFERENCING OLD TABLE AS old_rows "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_after_delete()")
    op.execute(f"CREATE TRIGGER {prefix}_truncate AFTER TRUNCATE ON crypto_prices "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {prefix}_after_truncate()")


def _drop(table: str, prefix: str) -> None:
    for trigger in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER {prefix}_{trigger} ON crypto_prices")
        op.execute(f"DROP FUNCTION {prefix}_after_{trigger}()")
    op.execute(f"DROP FUNCTION refresh_{prefix}(integer[])")
    op.drop_table(table)


_NEW = dict(table="crypto_candle_series", columns=_CANDLE_COLUMNS, count="candle_count", prefix="candle_series",
            setting="app.candle_series_by_caller")
# 0007's shape, for the downgrade
_OLD = dict(table="crypto_close_series", columns=_CLOSE_COLUMNS, count="candles", prefix="close_series",
            setting="app.close_series_by_caller")


def _replace(old: dict, new: dict) -> None:
    _drop(old["table"], old["prefix"])
    _series_table(new["table"], new["columns"], new["count"])
    _functions(**new)
    op.execute(f"SELECT refresh_{new['prefix']}(ARRAY(SELECT id FROM cryptocurrencies))")


def upgrade() -> None:
    _replace(_OLD, _NEW)


def downgrade() -> None:
    _replace(_NEW, _OLD)
