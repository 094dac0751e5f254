"""Wire settings, the database engine, the service, the HTTP API and the CLI into one Flask app."""
from __future__ import annotations

import dataclasses
import gc
import logging
from typing import Any

from flask import Flask

from api.cli import register_cli
from api.config import Settings
from api.db.connection import db_config_for, make_engine, resolve_database_url
from api.http import register_http
from api.http.problems import problem_body
from api.http.resources.backtests import JOB_KINDS, check_body
from api.services import CryptoBacktestService
from api.services.backtest_service import warm_worker
from api.services.jobs import Jobs
from api.web import register_web


def build_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """The app factory behind `api.create_app`."""
    settings = settings or Settings.from_env()
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    app = Flask("api", static_folder=None)  # the dashboard serves /static (api/web)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * 1024 * 1024  # larger uploads answer 413
    url = resolve_database_url(settings)
    db_config = db_config_for(url, settings)
    # a request uses one connection at a time, so a server process never needs more than its threads
    engine = make_engine(db_config, pool_size=settings.gunicorn_threads)  # see README: connections
    app.extensions["db_engine"] = engine
    app.extensions["db_config"] = db_config
    app.extensions["backtest_service"] = CryptoBacktestService(
        engine, db_config, max_processes=settings.max_processes, start_method=settings.mp_start_method,
        auto_parallel_min_work=settings.auto_parallel_min_work, task_timeout=settings.task_timeout_s,
        max_sweep_backtests=settings.max_sweep_backtests,
        max_concurrent_batches=settings.max_concurrent_batches, max_queued_batches=settings.max_queued_batches,
        batch_queue_seconds=settings.batch_queue_seconds, executor=settings.executor,
        dask_scheduler_address=settings.dask_scheduler_address)
    app.extensions["jobs"] = Jobs(engine, {kind: run for kind, (run, _) in JOB_KINDS.items()},
                                  {kind: check_body(model) for kind, (_, model) in JOB_KINDS.items()},
                                  max_running=settings.max_running_jobs,
                                  heartbeat_timeout=settings.job_heartbeat_timeout_s, problem=problem_body)
    register_http(app)
    register_web(app)
    register_cli(app)
    warm_worker()  # compile/load engine kernels now, so no request pays for it
    return app


def warm_server_process(app: Flask) -> dict[str, Any]:
    """A server process's last step before it takes requests (gunicorn's post_worker_init, main thread).

    Starts the service's warm pool (so the first parallel batch pays no
    process start-up) and asks the database whether it is ready. Returns
    {"database_ready": bool, "database": readiness details, "pool_processes": n (0 with EXECUTOR=dask),
    "executor", "dask_scheduler_address"}.
    """
    service = app.extensions["backtest_service"]
    # A forked pool shares this process's pages, and a garbage collection walks (and so writes to) every
    # object: one in the first batches copied nearly every page, in this process and in each pool worker,
    # and made those batches 4-5x slower (0.14-0.16 s against 0.03 s). Frozen objects are never walked.
    gc.freeze()
    processes = service.start_pool()
    status = service.readiness()
    ready = status.get("database") == "reachable" and bool(status.get("at_head", True))
    settings = app.config["SETTINGS"]
    return {"database_ready": ready, "database": status, "pool_processes": processes, "executor": settings.executor,
            "dask_scheduler_address": settings.dask_scheduler_address}
