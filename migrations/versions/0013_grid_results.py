"""Grid sweeps stored compactly: one row per crypto and grid, holding the metrics of every setting.

A 1,000-setting grid over 211 cryptos is 211,000 backtests. As one
crypto_backtest_results row each, storing it cost more than computing it at
grid speed; as one row per crypto (the settings' metrics as one float64
matrix, `stats`, settings x METRIC_COLUMNS, little-endian, NaN = null) it is
211 rows. The settings themselves are listed once, on the batch
(`backtest_batches.parameter_sets`), in the order of the matrix rows;
`settings_hash` (SHA-256 of that list) with the crypto, span and data version
keys the cache, as parameters_hash does for single results. `errors` maps a
setting's index to its error ({"code", "message"}); a failure of the whole
crypto is `crypto_error`. The matrix's columns are METRIC_COLUMNS in order: a
migration that changes that order or adds a metric must rewrite these rows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("backtest_batches", sa.Column("parameter_sets", postgresql.JSONB, nullable=True))
    op.create_table(
        "grid_results",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("batch_id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("strategy_id", sa.Integer, nullable=False),
        sa.Column("crypto_id", sa.Integer, sa.ForeignKey("cryptocurrencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("span_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("span_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_version", sa.BigInteger, nullable=True),
        sa.Column("candles", sa.Integer, nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stats", sa.LargeBinary, nullable=False),
        sa.Column("errors", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("crypto_error", postgresql.JSONB, nullable=True),
        sa.Column("calculation_time_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_grid_results_batch", "grid_results", ["batch_id"])
    op.create_index("ix_grid_results_lookup", "grid_results",
                    ["strategy_id", "settings_hash", "crypto_id", "data_version"])


def downgrade() -> None:
    op.drop_table("grid_results")
    op.drop_column("backtest_batches", "parameter_sets")
