"""Settings from environment variables, read once; the README's table mirrors this.

Keeping every knob in one frozen dataclass means the app factory, the CLI
and the worker processes all agree on the same values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Service settings. `database_url` None means: start the embedded PostgreSQL."""

    database_url: str | None = None
    pgserver_dir: Path = REPO_ROOT / ".pgdata"
    max_processes: int = 8
    log_level: str = "INFO"
    port: int = 5001
    demo_cryptos: int = 211
    demo_candles: int = 1828
    demo_seed: int = 42
    mp_start_method: str | None = None
    auto_parallel_min_work: int = 1_000_000
    max_sweep_backtests: int = 1_000_000
    sync_max_backtests: int = 200_000
    task_timeout_s: int = 60
    max_concurrent_batches: int = 1
    max_queued_batches: int = 2
    batch_queue_seconds: int = 30
    max_upload_mb: int = 200
    statement_timeout_ms: int = 120_000
    lock_timeout_ms: int = 5_000
    gunicorn_threads: int = 4
    request_body_timeout_s: int = 900
    max_running_jobs: int = 1
    job_heartbeat_timeout_s: int = 30
    executor: str = "process"
    dask_scheduler_address: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        """Read the environment; unset variables keep the defaults above."""
        return cls(
            database_url=os.environ.get("DATABASE_URL") or None,
            pgserver_dir=Path(os.environ.get("PGSERVER_DIR") or REPO_ROOT / ".pgdata"),
            max_processes=max(1, _int_env("MAX_PROCESSES", 8)),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            port=_int_env("PORT", 5001),
            demo_cryptos=_int_env("DEMO_CRYPTOS", 211),
            demo_candles=_int_env("DEMO_CANDLES", 1828),
            demo_seed=_int_env("DEMO_SEED", 42),
            mp_start_method=os.environ.get("MP_START_METHOD") or None,
            auto_parallel_min_work=_int_env("AUTO_PARALLEL_MIN_WORK", 1_000_000),
            max_sweep_backtests=_int_env("MAX_SWEEP_BACKTESTS", 1_000_000),
            sync_max_backtests=max(1, _int_env("SYNC_MAX_BACKTESTS", 200_000)),
            task_timeout_s=max(1, _int_env("TASK_TIMEOUT_SECONDS", 60)),
            max_concurrent_batches=max(1, _int_env("MAX_CONCURRENT_BATCHES", 1)),
            max_queued_batches=max(0, _int_env("MAX_QUEUED_BATCHES", 2)),
            batch_queue_seconds=max(0, _int_env("BATCH_QUEUE_SECONDS", 30)),
            max_upload_mb=max(1, _int_env("MAX_UPLOAD_MB", 200)),
            statement_timeout_ms=_int_env("STATEMENT_TIMEOUT_MS", 120_000),
            lock_timeout_ms=_int_env("LOCK_TIMEOUT_MS", 5_000),
            gunicorn_threads=max(1, _int_env("GUNICORN_THREADS", 4)),
            request_body_timeout_s=max(1, _int_env("REQUEST_BODY_TIMEOUT_SECONDS", 900)),
            max_running_jobs=max(1, _int_env("MAX_RUNNING_JOBS", 1)),
            job_heartbeat_timeout_s=max(2, _int_env("JOB_HEARTBEAT_TIMEOUT_SECONDS", 30)),
            executor=_executor_env(),
            dask_scheduler_address=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        )


EXECUTORS = ("process", "dask")


def _executor_env() -> str:
    """EXECUTOR: process (this host's pool, the default) or dask (a cluster at DASK_SCHEDULER_ADDRESS)."""
    value = (os.environ.get("EXECUTOR") or "process").strip().lower()
    if value not in EXECUTORS:
        raise ValueError(f"environment variable EXECUTOR must be one of {', '.join(EXECUTORS)}, got {value!r}")
    if value == "dask" and not os.environ.get("DASK_SCHEDULER_ADDRESS"):
        raise ValueError("EXECUTOR=dask needs DASK_SCHEDULER_ADDRESS (e.g. tcp://scheduler:8786)")
    return value
