"""Close series: a bulk loader of a crypto's first candles may write the series itself.

Even in one pass, the insert trigger sorts every inserted row to build the
packed series: ~0.6 s of a 1,000,000-row import. The service's COPY of a new
crypto already holds those candles in memory, in order, and can write the
series row directly. It says so with a transaction-local setting
(`SET LOCAL app.close_series_by_caller = 'on'`) for the one COPY statement;
every other writer still goes through the trigger, and the loader falls back
to refresh_close_series when the crypto turns out to have a series already.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BODY = """
        CREATE OR REPLACE FUNCTION close_series_after_insert() RETURNS trigger LANGUAGE plpgsql
        SET work_mem = '256MB' AS $$
        DECLARE
            a record;
            last_old timestamptz;
        BEGIN
            {guard}
            FOR a IN SELECT crypto_id, string_agg(float8send(close), ''::bytea ORDER BY time) AS bytes,
                            min(time) AS first_new, max(time) AS last_new, count(*) AS k
                     FROM new_rows GROUP BY crypto_id ORDER BY crypto_id LOOP
                PERFORM 1 FROM cryptocurrencies WHERE id = a.crypto_id FOR UPDATE;
                SELECT last_time INTO last_old FROM crypto_close_series WHERE crypto_id = a.crypto_id;
                IF NOT FOUND THEN  -- no series: these are the crypto's first candles
                    INSERT INTO crypto_close_series (crypto_id, closes, first_time, last_time, candles)
                    VALUES (a.crypto_id, a.bytes, a.first_new, a.last_new, a.k);
                ELSIF a.first_new > last_old THEN
                    UPDATE crypto_close_series
                    SET closes = closes || a.bytes, last_time = a.last_new, candles = candles + a.k
                    WHERE crypto_id = a.crypto_id;
                ELSE
                    PERFORM refresh_close_series(ARRAY[a.crypto_id]);
                END IF;
            END LOOP;
            RETURN NULL;
        END $$
"""
_GUARD = ("IF current_setting('app.close_series_by_caller', true) = 'on' THEN\n"
          "                RETURN NULL;  -- the loader writes this statement's series itself\n"
          "            END IF;")


def upgrade() -> None:
    op.execute(_BODY.replace("{guard}", _GUARD))


def downgrade() -> None:
    op.execute(_BODY.replace("{guard}", ""))
