"""Results: replace the per-row foreign-key checks with a delete trigger.

crypto_backtest_results is an append-only log written in bulk (211 rows a
batch, 10,550 for a 50-setting sweep). Measured on a sweep, the two foreign
keys' per-row checks were ~75 % of the cost of storing it (0.37 s of 0.40 s
for 10,550 rows); the service only ever writes ids it has just read in the
same request. What the foreign keys gave besides, ON DELETE CASCADE when a
cryptocurrency is deleted, a statement-level trigger keeps.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("crypto_backtest_results_crypto_id_fkey", "crypto_backtest_results", type_="foreignkey")
    op.drop_constraint("crypto_backtest_results_strategy_id_fkey", "crypto_backtest_results", type_="foreignkey")
    op.execute("""
        CREATE FUNCTION results_after_crypto_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM crypto_backtest_results r USING old_rows o WHERE r.crypto_id = o.id;
            RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER results_crypto_delete AFTER DELETE ON cryptocurrencies "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION results_after_crypto_delete()")


def downgrade() -> None:
    op.execute("DROP TRIGGER results_crypto_delete ON cryptocurrencies")
    op.execute("DROP FUNCTION results_after_crypto_delete()")
    op.execute("DELETE FROM crypto_backtest_results r WHERE NOT EXISTS "
               "(SELECT 1 FROM cryptocurrencies c WHERE c.id = r.crypto_id)")
    op.create_foreign_key("crypto_backtest_results_crypto_id_fkey", "crypto_backtest_results", "cryptocurrencies",
                          ["crypto_id"], ["id"], ondelete="CASCADE")
    op.create_foreign_key("crypto_backtest_results_strategy_id_fkey", "crypto_backtest_results", "strategies",
                          ["strategy_id"], ["id"])
