"""Jobs in PostgreSQL (issue 13, first part): queue order, one running at a time, progress, cancel, a dead runner."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from api.db import job_store
from api.services import batches
from api.services.errors import Conflict, ValidationFailed
from api.services.jobs import Jobs
from api.services.selection import parse_selection

GRID = {"rsi_period": [7, 9, 14], "oversold_threshold": [25, 30]}


def _grid_work(service, seen: list | None = None):
    def work(request, progress):
        def observed(done, total):
            if seen is not None:
                seen.append((done, total))
            progress(done, total)
        return service.run_grid_sweep(1, request["grid"], use_parallel=request.get("use_parallel", False),
                                      selection=parse_selection(request.get("symbols")), progress=observed)
    return work


def _jobs(engine, service, seen=None, **kwargs) -> Jobs:
    return Jobs(engine, {"sweep": _grid_work(service, seen)}, heartbeat_seconds=0.05, **kwargs)


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _strip(answer):
    return [[{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in s["results"]] for s in answer["top"]]


def test_a_job_runs_queued_running_succeeded_with_its_progress_and_the_routes_answer(demo_db, services) -> None:
    seen: list = []
    jobs = _jobs(demo_db, services[2], seen)
    job = jobs.submit("sweep", {"grid": GRID})
    assert job["state"] == "queued" and job["progress_done"] == 0 and job["started_at"] is None
    ended = jobs.run_next("runner-a")
    assert ended["job_id"] == job["job_id"] and ended["state"] == "succeeded" and ended["error"] is None
    assert ended["started_at"] <= ended["finished_at"] and ended["attempts"] == 1
    assert ended["progress_done"] == ended["progress_total"] == 6 * 24
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 144 and len(set(done)) > 10  # it rose crypto by crypto
    stored = batches.read_batch(demo_db, ended["batch_id"])
    direct = services[2].run_grid_sweep(1, GRID, use_parallel=False, store=False)
    assert stored["settings"] == direct["settings"] and _strip(stored) == _strip(direct)
    assert jobs.run_next("runner-a") is None  # nothing left


def test_jobs_run_in_order_one_at_a_time(demo_db, services) -> None:
    jobs = _jobs(demo_db, services[2])
    first = jobs.submit("sweep", {"grid": {"rsi_period": [7]}})
    second = jobs.submit("sweep", {"grid": {"rsi_period": [9]}})
    with demo_db.begin() as conn:  # another runner holds the first
        held = job_store.claim_job(conn, "runner-b", max_running=1)
    assert held["job_id"] == first["job_id"]
    assert jobs.run_next("runner-a") is None  # MAX_RUNNING_JOBS = 1 is taken
    with demo_db.begin() as conn:
        assert job_store.finish_job(conn, first["job_id"], "runner-b", "succeeded")
        assert not job_store.finish_job(conn, first["job_id"], "runner-a", "failed")  # not its job
    ran = jobs.run_next("runner-a")
    assert ran["job_id"] == second["job_id"] and ran["state"] == "succeeded"
    listed = jobs.list(10)
    assert [j["job_id"] for j in listed] == [second["job_id"], first["job_id"]]  # newest first


def test_a_queued_job_cancelled_never_runs(demo_db, services) -> None:
    jobs = _jobs(demo_db, services[2])
    job = jobs.submit("sweep", {"grid": GRID})
    cancelled = jobs.cancel(job["job_id"])
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"] is not None
    assert jobs.run_next() is None and _count(demo_db, "backtest_batches") == 0
    with pytest.raises(Conflict, match="already cancelled"):  # a finished job stays as it is
        jobs.cancel(job["job_id"])
    assert jobs.get(job["job_id"])["state"] == "cancelled"


@pytest.mark.parametrize("use_parallel", [False, True], ids=["sequential", "parallel"])
def test_a_running_job_cancelled_stops_and_stores_nothing(demo_db, services, use_parallel) -> None:
    service = services[2]
    gate = threading.Event()
    jobs = _jobs(demo_db, service)
    real = jobs.work["sweep"]

    def slow(request, progress):
        def paced(done, total):
            gate.set()
            progress(done, total)
            threading.Event().wait(0.02)  # a crypto at a time, so the cancel lands mid-batch
        return real(request, paced)
    jobs.work["sweep"] = slow
    job = jobs.submit("sweep", {"grid": {"rsi_period": list(range(5, 60))}, "use_parallel": use_parallel})
    runner = threading.Thread(target=lambda: result.append(jobs.run_next("runner-a")))
    result: list = []
    runner.start()
    assert gate.wait(30)
    jobs.cancel(job["job_id"])
    runner.join(30)
    assert not runner.is_alive()
    ended = result[0]
    assert ended["state"] == "cancelled" and ended["batch_id"] is None
    assert 0 < ended["progress_done"] < 55 * 24
    assert _count(demo_db, "backtest_batches") == 0 and _count(demo_db, "grid_results") == 0
    again = service.run_grid_sweep(1, {"rsi_period": [7]}, use_parallel=use_parallel, store=False)
    assert again["summary"]["failed"] == 0  # the pool (or the sequential path) is usable at once


def test_a_job_whose_runner_died_is_queued_again_once_then_failed(demo_db, services) -> None:
    jobs = _jobs(demo_db, services[2], heartbeat_timeout=30)
    job = jobs.submit("sweep", {"grid": {"rsi_period": [7]}})

    def die_holding_it() -> None:
        with demo_db.begin() as conn:
            assert job_store.claim_job(conn, "dead-runner", 1)["job_id"] == job["job_id"]
            conn.execute(text("UPDATE jobs SET heartbeat_at = now() - interval '31 seconds'"))

    die_holding_it()
    assert jobs.get(job["job_id"])["state"] == "running"
    again = jobs.run_next("runner-a")  # reaps it (queued again, attempt 1 of 2), then claims and runs it
    assert again["job_id"] == job["job_id"] and again["state"] == "succeeded" and again["attempts"] == 2
    second = jobs.submit("sweep", {"grid": {"rsi_period": [9]}})
    with demo_db.begin() as conn:
        conn.execute(text("UPDATE jobs SET attempts = 1 WHERE job_id = CAST(:id AS uuid)"), {"id": second["job_id"]})
    job = second
    die_holding_it()  # its second claim dies too
    assert jobs.run_next("runner-a") is None
    failed = jobs.get(second["job_id"])
    assert failed["state"] == "failed" and failed["error"]["errors"][0]["field"] == "job"
    assert failed["finished_at"] is not None and failed["runner"] is None


def test_a_bad_job_is_refused_before_it_is_queued(demo_db, services) -> None:
    def check(request):
        if "grid" not in request:
            raise ValidationFailed("grid is required", [{"field": "request.grid", "message": "required"}])
    jobs = Jobs(demo_db, {"sweep": _grid_work(services[2])}, {"sweep": check})
    with pytest.raises(ValidationFailed) as info:
        jobs.submit("nope", {})
    assert info.value.errors[0]["field"] == "kind"
    with pytest.raises(ValidationFailed) as info:
        jobs.submit("sweep", {"parameters": {}})
    assert info.value.errors[0]["field"] == "request.grid"
    assert _count(demo_db, "jobs") == 0


def test_a_failing_job_keeps_its_problem_and_the_runner_goes_on(demo_db, services) -> None:
    jobs = _jobs(demo_db, services[2])
    bad = jobs.submit("sweep", {"grid": {"rsi_period": [1]}})  # below the parameter's minimum
    good = jobs.submit("sweep", {"grid": {"rsi_period": [7]}})
    failed = jobs.run_next("runner-a")
    assert failed["job_id"] == bad["job_id"] and failed["state"] == "failed"
    assert failed["error"]["errors"][0]["field"].startswith("grid")
    assert jobs.run_next("runner-a")["job_id"] == good["job_id"]
