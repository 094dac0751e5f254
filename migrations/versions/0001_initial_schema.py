"""Initial schema: cryptocurrencies, prices, strategies, backtest results.

The strategy rows are written from the engine's registry by migration 0009
(and re-written by `catalog.upgrade_database` at every start), never from a literal copy here.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "cryptocurrencies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("symbol", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("interval", sa.String(8), nullable=False, server_default="1d"),
        sa.Column("is_synthetic", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "crypto_prices",
        sa.Column("crypto_id", sa.Integer, sa.ForeignKey("cryptocurrencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Float(53), nullable=False),
        sa.Column("high", sa.Float(53), nullable=False),
        sa.Column("low", sa.Float(53), nullable=False),
        sa.Column("close", sa.Float(53), nullable=False),
        sa.Column("volume", sa.Float(53), nullable=False),
        sa.PrimaryKeyConstraint("crypto_id", "time", name="crypto_prices_pkey"),
    )
    op.create_table(
        "strategies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parameter_schema", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "crypto_backtest_results",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("batch_id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("strategy_id", sa.Integer, sa.ForeignKey("strategies.id"), nullable=False),
        sa.Column("crypto_id", sa.Integer, sa.ForeignKey("cryptocurrencies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("parameters", postgresql.JSONB, nullable=False),
        sa.Column("parameters_hash", sa.String(64), nullable=False),
        sa.Column("total_return", sa.Float(53)),
        sa.Column("final_value", sa.Float(53)),
        sa.Column("buy_and_hold_return", sa.Float(53)),
        sa.Column("num_trades", sa.Integer),
        sa.Column("win_rate", sa.Float(53)),
        sa.Column("max_drawdown", sa.Float(53)),
        sa.Column("sharpe_ratio", sa.Float(53)),
        sa.Column("sortino_ratio", sa.Float(53)),
        sa.Column("exposure", sa.Float(53)),
        sa.Column("profit_factor", sa.Float(53)),
        sa.Column("open_position", sa.Boolean),
        sa.Column("calculation_time_ms", sa.Float(53), nullable=False),
        sa.Column("error", postgresql.JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_results_batch", "crypto_backtest_results", ["batch_id"])
    op.create_index("ix_results_strategy_params", "crypto_backtest_results", ["strategy_id", "parameters_hash"])
    op.create_index("ix_results_crypto", "crypto_backtest_results", ["crypto_id"])


def downgrade() -> None:
    op.drop_table("crypto_backtest_results")
    op.drop_table("strategies")
    op.drop_table("crypto_prices")
    op.drop_table("cryptocurrencies")

