"""Batches whose results are not result rows (a Monte Carlo: per crypto its percentiles) keep them on the batch.

`backtest_batches.results` holds such a batch's per-crypto results as JSON, in
the order it answered; batches of result rows (`/all`, sweeps, grids, single
backtests) leave it null.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("backtest_batches", sa.Column("results", postgresql.JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("backtest_batches", "results")
