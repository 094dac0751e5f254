"""The job runner as a process (`flask --app api jobs-worker`): runs queued jobs, stops on SIGTERM, and a runner
SIGKILLed mid-job leaves a job that the next runner takes over once its heartbeat is JOB_HEARTBEAT_TIMEOUT old."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from api.services.jobs import Jobs
from tests.served import kill_group

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).parent / "flask"
SLOW = {"strategy_id": 1, "grid": {"rsi_period": list(range(2, 1000)), "oversold_threshold": list(range(10, 30))},
        "use_parallel": False}  # 479,520 backtests: seconds, crypto by crypto


def _worker(db_url: str, log) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url, "JOB_HEARTBEAT_TIMEOUT_SECONDS": "2", "LOG_LEVEL": "INFO"}
    return subprocess.Popen([str(FLASK), "--app", "api", "jobs-worker", "--poll-seconds", "0.1"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(jobs: Jobs, job_id: str, states: set[str], seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['state']} after {seconds} s")


@pytest.fixture
def jobs(app, demo_db):
    return app.extensions["jobs"]


@pytest.mark.timeout(240)
def test_a_runner_process_runs_jobs_and_a_killed_ones_job_is_taken_over(app, jobs, db_url) -> None:
    with tempfile.TemporaryDirectory(prefix="bt-jobs-") as folder, open(Path(folder) / "worker.log", "wb") as log:
        first = _worker(db_url, log)
        try:
            with app.app_context():
                quick = jobs.submit("sweep", {**SLOW, "grid": {"rsi_period": [7]}})
                assert _wait(jobs, quick["job_id"], {"succeeded", "failed"})["state"] == "succeeded"
                slow = jobs.submit("sweep", SLOW)
                running = _wait(jobs, slow["job_id"], {"running"})
                deadline = time.monotonic() + 60
                while jobs.get(slow["job_id"])["progress_done"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.killpg(first.pid, signal.SIGKILL)  # the runner dies mid-job
                first.wait(10)
                assert jobs.get(slow["job_id"])["state"] == "running"  # nobody knows yet
            second = _worker(db_url, log)
            try:
                with app.app_context():
                    ended = _wait(jobs, slow["job_id"], {"succeeded", "failed"}, 180)
                assert ended["state"] == "succeeded" and ended["attempts"] == 2
                assert ended["runner"] != running["runner"] and ended["progress_done"] == ended["progress_total"]
                second.send_signal(signal.SIGTERM)  # a runner stops when told
                assert second.wait(30) == 0
            finally:
                kill_group(second)
        except BaseException:
            sys.stderr.write((Path(folder) / "worker.log").read_text(errors="replace")[-10_000:])
            raise
        finally:
            kill_group(first)


def test_two_jobs_queue_in_order_behind_one_runner(app, jobs) -> None:
    with app.app_context():
        a = jobs.submit("sweep", {**SLOW, "grid": {"rsi_period": [7]}})
        b = jobs.submit("sweep", {**SLOW, "grid": {"rsi_period": [9]}})
        assert [jobs.run_next("r")["job_id"], jobs.run_next("r")["job_id"]] == [a["job_id"], b["job_id"]]
        assert jobs.run_next("r") is None
