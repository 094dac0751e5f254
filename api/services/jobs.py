"""Long work as jobs (issue 13, first part): queued in PostgreSQL, run by job runners, with progress and cancel.

Why a table and not a queue library: the embedded default must stay one
server (PostgreSQL), the work is a handful of long jobs (not many small
ones), and a job's whole life (state, progress, heartbeat, cancel, result) is
one row the API reads back as it is. `api/db/job_store.py` claims with
`FOR UPDATE SKIP LOCKED`; procrastinate would bring its own schema, worker
and async runtime for the same few statements.

A runner (`Jobs.run_next`, looped by `run_forever`) first reaps jobs whose
runner stopped sending heartbeats (queued again once, then failed), then
claims the oldest queued job if fewer than `max_running` run, and runs it:
a heartbeat thread beats every `heartbeat_seconds` and learns of a cancel; the
job's progress callback records progress and raises JobCancelled once a cancel
is asked, which unwinds the batch (its fan-out stops its workers, its storing
transaction rolls back: nothing of it is stored).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine

from api.db import job_store
from api.services.batches import MAX_PAGE, checked_int, decode_cursor, encode_cursor, is_uuid
from api.services.errors import Conflict, NotFound, ServiceError, ValidationFailed

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
# a kind's work: (its request body, a progress callback) -> the answer the route would give
Work = Callable[[Mapping[str, Any], Progress], Mapping[str, Any]]
# a kind's check of a request before it is queued: raises the ServiceError its route would answer
Check = Callable[[Mapping[str, Any]], None]


class JobCancelled(Exception):
    """Raised inside a job's work once its cancel is asked: the work unwinds and stores nothing."""


class Jobs:
    """Submit, read, list and cancel jobs; run them as a runner (see the module docstring)."""

    def __init__(self, engine: Engine, work: Mapping[str, Work], checks: Mapping[str, Check] | None = None,
                 max_running: int = 1, heartbeat_timeout: float = 30.0, heartbeat_seconds: float = 0.5,
                 problem: Callable[[Exception], dict[str, Any]] | None = None) -> None:
        """problem(exc): the problem+json body a failed job's `error` holds (the HTTP layer's own mapping, given
        by the app; without it a plain one)."""
        self.engine = engine
        self.problem = problem or _plain_problem
        self.work = dict(work)
        self.checks = dict(checks or {})
        self.max_running = max_running
        self.heartbeat_timeout = heartbeat_timeout
        self.heartbeat_seconds = heartbeat_seconds

    # ---- the API's side -------------------------------------------------------------------

    def submit(self, kind: Any, request: Any) -> dict[str, Any]:
        """Queue a job after checking it as its route would (the same ServiceError when it is bad)."""
        if kind not in self.work:
            raise ValidationFailed(f"unknown job kind {kind!r}", [
                {"field": "kind", "message": f"must be one of {', '.join(sorted(self.work))}"}])
        if not isinstance(request, Mapping):
            raise ValidationFailed("request must be an object", [{"field": "request", "message": "must be an "
                                                                                                 "object"}])
        check = self.checks.get(kind)
        if check is not None:
            check(request)
        with self.engine.begin() as conn:
            return job_store.insert_job(conn, str(uuid.uuid4()), kind, dict(request))

    def get(self, job_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            job = job_store.get_job(conn, _checked_id(job_id)) if is_uuid(job_id) else None
        if job is None:
            raise _no_job(job_id)
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, ask a running one to stop; a finished job stays as it is (Conflict)."""
        with self.engine.begin() as conn:
            found = job_store.request_cancel(conn, _checked_id(job_id)) if is_uuid(job_id) else None
        if found is None:
            raise _no_job(job_id)
        before, job = found
        if before in job_store.FINISHED:
            raise Conflict(f"job {job_id} already {before}: there is nothing to cancel",
                           [{"field": "job_id", "message": f"already {before}"}], retry_after=0)
        return job

    def list(self, limit: int = 50, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return job_store.list_jobs(conn, limit, after)

    def page(self, limit: Any = 50, cursor: Any = None) -> dict[str, Any]:
        """{"jobs": [...newest first], "next_cursor"}, like the batch list; ValidationFailed naming a bad one."""
        size = checked_int(limit, "limit", 1, MAX_PAGE)
        rows = self.list(size + 1, None if cursor is None else decode_cursor(cursor))
        page = rows[:size]
        more = len(rows) > size
        return {"jobs": [job_view(j) for j in page],
                "next_cursor": encode_cursor(page[-1]["created_at"], page[-1]["job_id"]) if more else None}

    # ---- the runner's side ----------------------------------------------------------------

    def run_next(self, runner: str | None = None) -> dict[str, Any] | None:
        """Reap stale jobs, then claim and run one; the job as it ended, None when none was claimed."""
        runner = runner or runner_name()
        with self.engine.begin() as conn:
            for job in job_store.reap_stale(conn, self.heartbeat_timeout):
                log.warning("job %s lost its runner: now %s", job["job_id"], job["state"])
            job = job_store.claim_job(conn, runner, self.max_running)
        if job is None:
            return None
        log.info("job %s (%s) running on %s", job["job_id"], job["kind"], runner)
        return self._run(job, runner)

    def run_forever(self, stop: threading.Event, runner: str | None = None, poll_seconds: float = 0.5) -> None:
        """run_next until `stop` is set, waiting poll_seconds whenever no job was claimed."""
        runner = runner or runner_name()
        while not stop.is_set():
            try:
                ran = self.run_next(runner)
            except Exception:  # the database went away: keep trying, a job left running is reaped later
                log.exception("job runner %s: claiming failed", runner)
                ran = None
            if ran is None:
                stop.wait(poll_seconds)

    def _run(self, job: dict[str, Any], runner: str) -> dict[str, Any]:
        beat = _Heartbeat(self.engine, job["job_id"], runner, self.heartbeat_seconds)
        beat.start()
        state, error, batch_id = "failed", None, None
        try:
            answer = self.work[job["kind"]](job["request"], beat.progress)
            state, batch_id = "succeeded", _batch_of(answer)
        except JobCancelled:
            state = "cancelled"
        except Exception as exc:  # the route's 4xx/503, or a bug: the job fails with its problem, the next one runs
            if not isinstance(exc, ServiceError):
                log.exception("job %s failed", job["job_id"])
            error = self.problem(exc)
        finally:
            beat.stop()
        with self.engine.begin() as conn:
            job_store.finish_job(conn, job["job_id"], runner, state, error, batch_id)
            ended = job_store.get_job(conn, job["job_id"])
        return ended or job


class _Heartbeat(threading.Thread):
    """Beats for one running job; records its progress; tells its work to stop once a cancel is asked."""

    def __init__(self, engine: Engine, job_id: str, runner: str, every: float) -> None:
        super().__init__(daemon=True, name=f"job-heartbeat-{job_id[:8]}")
        self.engine, self.job_id, self.runner, self.every = engine, job_id, runner, every
        self.done: int | None = None
        self.total: int | None = None
        self.cancelled = False
        self.lost = False
        self._halt = threading.Event()

    def progress(self, done: int, total: int) -> None:
        """The job's progress callback: remembered for the next beat; JobCancelled once a cancel is asked."""
        self.done, self.total = int(done), int(total)
        if self.cancelled or self.lost:
            raise JobCancelled()

    def run(self) -> None:
        while not self._halt.is_set():
            self._beat()
            self._halt.wait(self.every)

    def _beat(self) -> None:
        try:
            with self.engine.begin() as conn:
                job = job_store.heartbeat(conn, self.job_id, self.runner, self.done, self.total)
        except Exception:  # the database is down: the work finds out itself; the job is reaped if it must be
            log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
            return
        if job is None:
            self.lost = True  # reaped meanwhile: another runner may have it, so stop
        elif job["cancel_requested"]:
            self.cancelled = True

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=max(5.0, 2 * self.every))
        self._beat()  # the last progress


def job_view(job: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A job as the API shows it: state, progress, an estimate of the time left, its error or its result."""
    now = now or datetime.now(timezone.utc)
    done, total = job["progress_done"], job["progress_total"]
    eta = None
    if job["state"] == "running" and job["started_at"] is not None and total and 0 < done < total:
        eta = round((now - job["started_at"]).total_seconds() / done * (total - done), 1)
    elif job["state"] == "running" and total and done >= total:
        eta = 0.0
    batch = job["batch_id"]
    return {"job_id": job["job_id"], "kind": job["kind"], "state": job["state"],
            "progress": {"done": done, "total": total}, "eta_seconds": eta,
            "created_at": _iso(job["created_at"]), "started_at": _iso(job["started_at"]),
            "finished_at": _iso(job["finished_at"]), "attempts": job["attempts"],
            "cancel_requested": job["cancel_requested"], "error": job["error"], "batch_id": batch,
            "result_url": None if batch is None else f"/api/crypto/backtest/batches/{batch}",
            "request": job["request"]}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def runner_name() -> str:
    """host:pid:thread, unique among live runners."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _batch_of(answer: Mapping[str, Any]) -> str | None:
    summary = answer.get("summary") if isinstance(answer, Mapping) else None
    if isinstance(summary, Mapping):
        return summary.get("batch_id")
    return answer.get("batch_id") if isinstance(answer, Mapping) else None


def _no_job(job_id: Any) -> NotFound:
    return NotFound(f"no job {job_id!r}", [{"field": "job_id", "message": f"no job {job_id}"}])


def _checked_id(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _plain_problem(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, ServiceError):
        return {"type": "about:blank", "title": type(exc).__name__, "detail": exc.detail,
                "errors": exc.errors or [{"field": "request", "message": exc.detail}]}
    return {"type": "about:blank", "title": "Internal error", "status": 500, "detail": f"{type(exc).__name__}: {exc}",
            "errors": [{"field": "job", "message": "failed"}]}
