"""Jobs: long work queued in PostgreSQL, claimed by job runners with FOR UPDATE SKIP LOCKED (issue 13).

One row per job: what it runs (`kind` and the route's `request` body), its
`state` (queued, running, succeeded, failed, cancelled), progress in backtests,
the runner that holds it and that runner's last `heartbeat_at` (a running job
whose heartbeat is older than JOB_HEARTBEAT_TIMEOUT_SECONDS is failed or
queued again, once: `attempts` counts the claims), `cancel_requested`, the
problem `error` of a failed job and the `batch_id` of the stored result.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request", postgresql.JSONB, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("progress_done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("progress_total", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runner", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("error", postgresql.JSONB, nullable=True),
        sa.Column("batch_id", postgresql.UUID(as_uuid=False), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="jobs_state"),
    )
    # the queue: the oldest queued job first; the listing: newest first
    op.create_index("jobs_queued", "jobs", ["created_at", "job_id"], postgresql_where=sa.text("state = 'queued'"))
    op.create_index("jobs_newest", "jobs", [sa.text("created_at DESC"), sa.text("job_id DESC")])


def downgrade() -> None:
    op.drop_table("jobs")
