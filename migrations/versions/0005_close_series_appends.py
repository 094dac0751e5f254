"""Close series: extend the packed bytes when new candles come after the last one, instead of rebuilding.

A feed that inserts one candle at a time (or a naive row-by-row loader) made
every INSERT re-aggregate the crypto's whole series: quadratic. Rows that all
come after the series' last candle are now appended; any other insert still
rebuilds that crypto's series from crypto_prices.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION close_series_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            rebuild integer[];
        BEGIN
            PERFORM 1 FROM cryptocurrencies WHERE id IN (SELECT crypto_id FROM new_rows) ORDER BY id FOR UPDATE;
            rebuild := ARRAY(
                SELECT DISTINCT n.crypto_id FROM new_rows n
                LEFT JOIN crypto_close_series s ON s.crypto_id = n.crypto_id
                WHERE s.crypto_id IS NULL OR n.time <= s.last_time);
            UPDATE crypto_close_series s
            SET closes = s.closes || a.bytes, last_time = a.last_new, candles = s.candles + a.k
            FROM (SELECT crypto_id, string_agg(float8send(close), ''::bytea ORDER BY time) AS bytes,
                         max(time) AS last_new, count(*) AS k
                  FROM new_rows WHERE NOT (crypto_id = ANY(rebuild)) GROUP BY crypto_id) a
            WHERE s.crypto_id = a.crypto_id;
            IF cardinality(rebuild) > 0 THEN
                PERFORM refresh_close_series(rebuild);
            END IF;
            RETURN NULL;
        END $$
    """)


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION close_series_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM refresh_close_series(ARRAY(SELECT DISTINCT crypto_id FROM new_rows));
            RETURN NULL;
        END $$
    """)
