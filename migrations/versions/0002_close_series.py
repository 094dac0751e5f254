"""Packed close series per crypto, kept in step with crypto_prices by triggers.

A batch reads every crypto's closes; from crypto_prices that is an index scan
and an aggregate of ~1,800 rows per daily crypto (~44,000 hourly), which
measured as the largest cost of a whole request. crypto_close_series holds
the same closes packed as one bytea per crypto (big-endian float64s, as
float8send writes them; plus the span), so a worker reads one row and numpy
takes the bytes as they are. A float8[] measured ~8x slower to send than
bytea for 43,800 hourly closes. Statement-level triggers on crypto_prices (INSERT, UPDATE, DELETE,
TRUNCATE) rebuild the series of every crypto a statement touched, inside the
same transaction, whoever writes: the table can never disagree with the
prices a reader sees. crypto_prices stays the source of truth.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crypto_close_series",
        sa.Column("crypto_id", sa.Integer, sa.ForeignKey("cryptocurrencies.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("closes", sa.LargeBinary, nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("candles", sa.Integer, nullable=False),
    )
    # packed floats barely compress; storing them uncompressed makes every read cheaper
    op.execute("ALTER TABLE crypto_close_series ALTER COLUMN closes SET STORAGE EXTERNAL")
    op.execute("""
        CREATE FUNCTION refresh_close_series(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            -- one writer per crypto at a time, so the aggregate below sees every committed row
            PERFORM 1 FROM cryptocurrencies WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
            DELETE FROM crypto_close_series s WHERE s.crypto_id = ANY(ids)
                AND NOT EXISTS (SELECT 1 FROM crypto_prices p WHERE p.crypto_id = s.crypto_id);
            INSERT INTO crypto_close_series (crypto_id, closes, first_time, last_time, candles)
            SELECT crypto_id, string_agg(float8send(close), ''::bytea ORDER BY time), min(time), max(time), count(*)
            FROM crypto_prices WHERE crypto_id = ANY(ids) GROUP BY crypto_id
            ON CONFLICT (crypto_id) DO UPDATE SET closes = EXCLUDED.closes, first_time = EXCLUDED.first_time,
                last_time = EXCLUDED.last_time, candles = EXCLUDED.candles;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION close_series_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_close_series(ARRAY(SELECT DISTINCT crypto_id FROM new_rows));
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION close_series_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_close_series(ARRAY(SELECT crypto_id FROM new_rows UNION SELECT crypto_id FROM old_rows));
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION close_series_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_close_series(ARRAY(SELECT DISTINCT crypto_id FROM old_rows));
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION close_series_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM crypto_close_series;
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER close_series_insert AFTER INSERT ON crypto_prices REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION close_series_after_insert()")
    op.execute("CREATE TRIGGER close_series_update AFTER UPDATE ON crypto_prices "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION close_series_after_update()")
    op.execute("CREATE TRIGGER close_series_delete AFTER DELETE ON crypto_prices REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION close_series_after_delete()")
    op.execute("CREATE TRIGGER close_series_truncate AFTER TRUNCATE ON crypto_prices "
               "FOR EACH STATEMENT EXECUTE FUNCTION close_series_after_truncate()")
    op.execute("SELECT refresh_close_series(ARRAY(SELECT id FROM cryptocurrencies))")


def downgrade() -> None:
    for trigger in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER close_series_{trigger} ON crypto_prices")
        op.execute(f"DROP FUNCTION close_series_after_{trigger}()")
    op.execute("DROP FUNCTION refresh_close_series(integer[])")
    op.drop_table("crypto_close_series")
