"""Jobs end to end (issue 13): `make run`'s server (`python -m api.serve`: gunicorn and a job runner beside it):
a job queued over HTTP is run, a killed runner is started again, and nothing is left once the server stops."""
from __future__ import annotations

import signal
import time

import psutil
import pytest

from tests.served import request_json, running_serve


def _runners(server: int) -> list[psutil.Process]:
    out = []
    for p in psutil.Process(server).children():
        try:
            if "jobs-worker" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:  # gone, or a zombie its parent has not reaped yet
            pass
    return out


def _wait_for(predicate, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _run_job(base: str, body: dict) -> dict:
    status, job = request_json(base + "/api/jobs", {"kind": "sweep", "request": body})
    assert status == 202, job

    def finished():
        _, now = request_json(f"{base}/api/jobs/{job['job_id']}")
        return now if now["state"] in ("succeeded", "failed", "cancelled") else None
    return _wait_for(finished)


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_make_runs_server_keeps_a_job_runner_that_runs_jobs_and_comes_back_when_killed(db_url, demo_db) -> None:
    with running_serve(db_url, JOB_HEARTBEAT_TIMEOUT_SECONDS="2") as (base, server, _):
        tree: list[psutil.Process] = []
        try:
            runner = _wait_for(lambda: _runners(server.pid))[0]
            done = _run_job(base, {"strategy_id": 1, "grid": {"rsi_period": [7, 14]}})
            assert done["state"] == "succeeded" and done["progress"]["done"] == done["progress"]["total"] == 48
            status, stored = request_json(base + done["result_url"])
            assert status == 200 and stored["summary"]["settings"] == 2
            runner.kill()
            replacement = _wait_for(lambda: [p for p in _runners(server.pid) if p.pid != runner.pid])[0]
            again = _run_job(base, {"strategy_id": 1, "grid": {"rsi_period": [9]}})
            assert again["state"] == "succeeded"
            tree = psutil.Process(server.pid).children(recursive=True)
            server.send_signal(signal.SIGTERM)  # make run's Ctrl-C or a service manager's stop
            assert server.wait(60) == 0
            _, alive = psutil.wait_procs(tree, timeout=20)
            assert alive == [] and not replacement.is_running()  # nothing is left behind
        finally:
            for p in tree:
                if p.is_running():
                    p.kill()
