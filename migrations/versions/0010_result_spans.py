"""Results: the span of candles a result covers, as requested (`start`/`end`; NULL = unbounded).

A batch may now test a span of each crypto's candles; its stored rows say
which, so a result is never mistaken for one over all the candles.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("crypto_backtest_results", sa.Column("span_start", sa.DateTime(timezone=True)))
    op.add_column("crypto_backtest_results", sa.Column("span_end", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("crypto_backtest_results", "span_end")
    op.drop_column("crypto_backtest_results", "span_start")
