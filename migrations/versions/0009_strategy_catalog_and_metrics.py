"""The seven strategies of the engine's registry, and the metric columns every result now carries.

The `strategies` rows are written from the engine's registry
(`api.services.catalog.strategy_rows`), not from a literal copy here: the
registry is the one source of each strategy's parameter schema, and
`catalog.upgrade_database` (make run, `flask db-upgrade`) re-writes the rows on every run, so a change to the
catalog needs no new migration. Strategy 1 keeps its id; its code becomes
"rsi" (DESIGN.md's name).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FLOAT_METRICS = ("total_fees", "cagr", "calmar_ratio", "sqn", "avg_trade_return", "best_trade", "worst_trade",
                 "avg_bars_held")
COMMON = ("slippage_pct", "execution", "stop_loss_pct", "take_profit_pct", "trailing_stop_pct")


def upgrade() -> None:
    from api.services.catalog import sync_strategy_rows

    for name in FLOAT_METRICS:
        op.add_column("crypto_backtest_results", sa.Column(name, sa.Float(53)))
    op.add_column("crypto_backtest_results", sa.Column("max_drawdown_duration", sa.Integer))
    sync_strategy_rows(op.get_bind())


def downgrade() -> None:
    for name in (*FLOAT_METRICS, "max_drawdown_duration"):
        op.drop_column("crypto_backtest_results", name)
    # back to the one strategy of 0008, with the parameters it knew
    op.execute("DELETE FROM crypto_backtest_results WHERE strategy_id <> 1")
    op.execute("DELETE FROM strategies WHERE id <> 1")
    removed = " - ".join(f"'{c}'" for c in COMMON)
    op.execute(f"UPDATE strategies SET code = 'rsi_buy_sell', parameter_schema = parameter_schema - {removed} "
               "WHERE id = 1")
