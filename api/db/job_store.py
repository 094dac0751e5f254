"""The jobs table (migration 0015): queue, claim, heartbeat, finish, cancel, reap. All of the jobs' SQL.

A claim takes the oldest queued job with `FOR UPDATE SKIP LOCKED` (two runners
never take the same one, and neither waits on the other's row) under a
transaction-level advisory lock, so that the count of running jobs checked
against MAX_RUNNING_JOBS cannot change between the check and the claim.
Every write by a runner names the runner: a runner that lost its job (reaped
after a missed heartbeat) cannot overwrite what happened since.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

_CLAIM_LOCK = 0x6A6F6273  # "jobs": serialises claims, held to the end of the claiming transaction
_COLUMNS = ("job_id, kind, request, state, progress_done, progress_total, created_at, started_at, finished_at, "
            "heartbeat_at, runner, attempts, cancel_requested, error, batch_id")
FINISHED = ("succeeded", "failed", "cancelled")


def insert_job(conn: Connection, job_id: str, kind: str, request: Mapping[str, Any]) -> dict[str, Any]:
    row = conn.execute(text(f"INSERT INTO jobs (job_id, kind, request) VALUES (CAST(:id AS uuid), :kind, "
                            f"CAST(:request AS jsonb)) RETURNING {_COLUMNS}"),
                       {"id": job_id, "kind": kind, "request": orjson.dumps(request).decode()}).mappings().one()
    return _job(row)


def get_job(conn: Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = CAST(:id AS uuid)"),
                       {"id": job_id}).mappings().first()
    return None if row is None else _job(row)


def list_jobs(conn: Connection, limit: int, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Jobs newest first (created_at, then job_id, descending), after the cursor (created_at, job_id)."""
    where, args = "", {"limit": int(limit)}
    if after is not None:
        where = "WHERE (created_at, job_id) < (CAST(:at AS timestamptz), CAST(:id AS uuid)) "
        args.update(at=after[0], id=after[1])
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs {where}ORDER BY created_at DESC, job_id DESC "
                             "LIMIT :limit"), args).mappings()
    return [_job(r) for r in rows]


def claim_job(conn: Connection, runner: str, max_running: int) -> dict[str, Any] | None:
    """The oldest queued job, now running on `runner`; None when none is queued or max_running already run.

    Call inside a transaction (the advisory lock lasts to its end)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    running = conn.execute(text("SELECT count(*) FROM jobs WHERE state = 'running'")).scalar_one()
    if running >= max_running:
        return None
    row = conn.execute(text(
        f"UPDATE jobs SET state = 'running', runner = :runner, started_at = now(), heartbeat_at = now(), "
        f"attempts = attempts + 1 WHERE job_id = (SELECT job_id FROM jobs WHERE state = 'queued' "
        f"ORDER BY created_at, job_id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING {_COLUMNS}"),
        {"runner": runner}).mappings().first()
    return None if row is None else _job(row)


def heartbeat(conn: Connection, job_id: str, runner: str, done: int | None = None,
              total: int | None = None) -> dict[str, Any] | None:
    """Record that `runner` is alive (and its progress); the job as it stands, None if it is no longer this
    runner's running job (reaped, or finished meanwhile)."""
    row = conn.execute(text(
        f"UPDATE jobs SET heartbeat_at = now(), progress_done = COALESCE(:done, progress_done), "
        f"progress_total = COALESCE(:total, progress_total) WHERE job_id = CAST(:id AS uuid) AND runner = :runner "
        f"AND state = 'running' RETURNING {_COLUMNS}"),
        {"id": job_id, "runner": runner, "done": done, "total": total}).mappings().first()
    return None if row is None else _job(row)


def finish_job(conn: Connection, job_id: str, runner: str, state: str, error: Mapping[str, Any] | None = None,
               batch_id: str | None = None) -> bool:
    """End `runner`'s running job as `state` (succeeded, failed or cancelled); False if it was not its to end."""
    if state not in FINISHED:
        raise ValueError(f"not a finished state: {state!r}")
    done = conn.execute(text(
        "UPDATE jobs SET state = CAST(:state AS varchar), finished_at = now(), error = CAST(:error AS jsonb), "
        "batch_id = CAST(:batch AS uuid), progress_done = CASE WHEN CAST(:state AS varchar) = 'succeeded' "
        "THEN COALESCE(progress_total, progress_done) ELSE progress_done END "
        "WHERE job_id = CAST(:id AS uuid) AND runner = :runner AND state = 'running'"),
        {"id": job_id, "runner": runner, "state": state, "batch": batch_id,
         "error": None if error is None else orjson.dumps(error).decode()})
    return done.rowcount == 1


def request_cancel(conn: Connection, job_id: str) -> tuple[str, dict[str, Any]] | None:
    """A queued job is cancelled at once; a running one is asked to stop (its runner ends it); a finished one
    stays as it is. (its state before, the job after that), None if there is no such job."""
    before = conn.execute(text("SELECT state FROM jobs WHERE job_id = CAST(:id AS uuid) FOR UPDATE"),
                          {"id": job_id}).scalar_one_or_none()
    if before is None:
        return None
    conn.execute(text(
        "UPDATE jobs SET state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, "
        "finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END, "
        "cancel_requested = state IN ('queued', 'running') OR cancel_requested "
        "WHERE job_id = CAST(:id AS uuid)"), {"id": job_id})
    return before, get_job(conn, job_id)


def reap_stale(conn: Connection, timeout_seconds: float, max_attempts: int = 2) -> list[dict[str, Any]]:
    """Running jobs whose runner missed its heartbeat for timeout_seconds: queued again while they have had
    fewer than max_attempts claims, else failed. The jobs as they are now."""
    rows = conn.execute(text(
        f"UPDATE jobs SET "
        f"state = CASE WHEN attempts < :most AND NOT cancel_requested THEN 'queued' "
        f"  WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END, "
        f"runner = NULL, progress_done = 0, "
        f"started_at = CASE WHEN attempts < :most AND NOT cancel_requested THEN NULL ELSE started_at END, "
        f"finished_at = CASE WHEN attempts < :most AND NOT cancel_requested THEN NULL ELSE now() END, "
        f"error = CASE WHEN attempts < :most OR cancel_requested THEN error ELSE CAST(:error AS jsonb) END "
        f"WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => :timeout) "
        f"RETURNING {_COLUMNS}"),
        {"most": int(max_attempts), "timeout": float(timeout_seconds),
         "error": orjson.dumps({"type": "about:blank", "title": "Job runner lost", "status": 500,
                                "detail": f"the runner of this job stopped sending heartbeats ({max_attempts} "
                                          f"attempts); nothing of it was stored",
                                "errors": [{"field": "job", "message": "its runner died"}]}).decode()}).mappings()
    return [_job(r) for r in rows]


def _job(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("job_id", "batch_id"):
        if out[key] is not None:
            out[key] = str(out[key])
    return out
