"""Batches you can come back to: one row per stored batch (`/all`, `/sweep`, `/backtest`) with its summary.

A batch's results are its own rows in crypto_backtest_results (batch_id) plus
the stored rows it answered from (`reused_result_ids`, see 0011), so reading a
batch back gives the answer it gave without storing any result twice.
`crypto_ids` lets the list filter batches by a crypto they include.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtest_batches",
        sa.Column("batch_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("strategy_id", sa.Integer, nullable=False),
        sa.Column("summary", postgresql.JSONB, nullable=False),
        sa.Column("crypto_ids", postgresql.ARRAY(sa.Integer), nullable=False),
        sa.Column("reused_result_ids", postgresql.ARRAY(sa.BigInteger), nullable=False,
                  server_default=sa.text("'{}'")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_batches_newest", "backtest_batches", [sa.text("created_at DESC"), sa.text("batch_id DESC")])
    op.create_index("ix_batches_cryptos", "backtest_batches", ["crypto_ids"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_table("backtest_batches")
