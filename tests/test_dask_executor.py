"""EXECUTOR=dask (issue 14): the same fan-out on a Dask cluster, a LocalCluster of 2 worker processes started here.

Its answers equal the process pool's and the sequential run's bit for bit; a worker killed mid-batch costs at most
its tasks (run again elsewhere, or `worker_lost`), never a hang; an unreachable scheduler is a 503.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from sqlalchemy import text

from api import create_app
from api.db.connection import db_config_for
from api.services import CryptoBacktestService
from api.services.dask_fanout import WORKER_SETTINGS, use_worker_settings
from api.services.errors import ExecutorUnavailable
from tests.answers import untimed
from tests.dask_tasks import slow_pid
from tests.served import ROOT, free_port, kill_group

GRID = {"rsi_period": [7, 9, 14], "oversold_threshold": [25, 30]}


@pytest.fixture(scope="module")
def dask_cluster(db_url: str) -> Iterator[LocalCluster]:
    """2 worker processes of 1 thread, each told the test database through DATABASE_URL (as a real worker is)."""
    use_worker_settings()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR, env={"DATABASE_URL": db_url})
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


@pytest.fixture
def dask_service(dask_cluster: LocalCluster, db_engine, db_url: str, settings) -> Iterator[CryptoBacktestService]:
    service = CryptoBacktestService(db_engine, db_config_for(db_url, settings), max_processes=2, executor="dask",
                                    dask_scheduler_address=dask_cluster.scheduler_address)
    try:
        yield service
    finally:
        service.close()


def test_all_sweep_and_monte_carlo_on_dask_equal_the_pool_and_the_sequential_run(dask_service, services,
                                                                                  demo_db) -> None:
    pool = services[2]
    run = dict(strategy_id=1, parameters={"rsi_period": 9}, store=False, use_cache=False)
    on_dask = dask_service.run_strategy_against_all_cryptos(**run, use_parallel=True)
    in_pool = pool.run_strategy_against_all_cryptos(**run, use_parallel=True)
    alone = pool.run_strategy_against_all_cryptos(**run, use_parallel=False)
    assert untimed(on_dask) == untimed(in_pool) == untimed(alone)
    assert len(on_dask["results"]) == 24 and all(r["error"] is None for r in on_dask["results"])
    assert on_dask["summary"]["executor"] == "dask" and 1 <= on_dask["summary"]["workers"] <= 2
    assert in_pool["summary"]["executor"] == "process" and in_pool["summary"]["workers"] == 2
    assert alone["summary"]["executor"] == "sequential" and alone["summary"]["workers"] == 1

    grid = dict(strategy_id=1, grid=GRID, store=False, use_cache=False)
    assert untimed(dask_service.run_grid_sweep(**grid)) == untimed(pool.run_grid_sweep(**grid))
    sets = dict(strategy_id=1, parameter_sets=[{}, {"rsi_period": 9}], store=False)
    assert untimed(dask_service.run_parameter_sweep(**sets)) == untimed(pool.run_parameter_sweep(**sets))
    luck = dict(strategy_id=1, parameters={}, method="bars", paths=20, seed=5, store=False)
    assert untimed(dask_service.run_monte_carlo(**luck)) == untimed(pool.run_monte_carlo(**luck))


def test_a_stored_batch_on_dask_reads_back_as_it_answered(dask_service, demo_db) -> None:
    answer = dask_service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, use_cache=False)
    with demo_db.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM crypto_backtest_results WHERE batch_id = :b"),
                              {"b": answer["summary"]["batch_id"]}).scalar_one()
    assert stored == 24


def test_a_worker_killed_mid_batch_costs_at_most_its_tasks(dask_cluster, dask_service, demo_db) -> None:
    cryptos = dask_service.cryptos()[:12]
    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        pids = client.run(os.getpid)  # {worker address: pid}
        stream = dask_service.stream(slow_pid, [(c, 0.25) for c in cryptos], True, 2)
        got = [next(stream)]
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker dies while the rest of the batch runs
        got += list(stream)
    assert [crypto_id for crypto_id, _ in got] == [c["id"] for c in cryptos]  # every task answers, in order
    outcomes = {outcome for _, outcome in got}
    assert outcomes <= set(pids.values()) | {"worker_lost"} | _new_pids(dask_cluster, pids) and len(outcomes) >= 2
    again = dask_service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False, use_cache=False)
    assert all(r["error"] is None for r in again["results"])  # the cluster (its nanny restarted the worker) goes on


def _new_pids(cluster: LocalCluster, old: dict[str, int]) -> set[int]:
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        return set(client.run(os.getpid).values()) - set(old.values())


def test_an_unreachable_scheduler_is_a_503_and_nothing_is_stored(settings, demo_db) -> None:
    app = create_app(dataclasses.replace(settings, executor="dask",
                                         dask_scheduler_address=f"tcp://127.0.0.1:{free_port()}"))
    client = app.test_client()
    before = client.get("/api/crypto/backtest/batches").get_json()["batches"]
    resp = client.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}, "use_cache": False})
    assert resp.status_code == 503 and resp.content_type == "application/problem+json", resp.get_json()
    problem = resp.get_json()
    assert "Dask scheduler" in problem["detail"] and resp.headers["Retry-After"]
    assert problem["errors"][0]["field"] == "executor"
    again = client.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}, "use_cache": False})
    assert again.status_code == 503 and "moments ago" in again.get_json()["detail"]  # refused at once, no 5 s wait
    assert client.get("/api/crypto/backtest/batches").get_json()["batches"] == before
    single = client.post("/api/crypto/backtest", json={"strategy_id": 1, "parameters": {}, "symbol": "SYN001"})
    assert single.status_code == 200  # one crypto runs here, as with the pool: it needs no cluster
    app.extensions["backtest_service"].close()


@pytest.mark.timeout(120)
def test_a_scheduler_that_goes_away_mid_batch_is_a_503_not_a_hang(db_engine, db_url, settings, demo_db) -> None:
    """A scheduler of its own (the `dask` command, as on a real cluster), killed while a batch waits on it."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT),  # workers import the package
           "DASK_CONFIG": str(WORKER_SETTINGS)}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    service = CryptoBacktestService(db_engine, db_config_for(db_url, settings), executor="dask",
                                    dask_scheduler_address=address)
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)  # a worker process takes a few seconds to start
        stream = service.stream(slow_pid, [(c, 0.2) for c in service.cryptos()[:20]], True, 1)
        assert next(stream)[0] == 1
        kill_group(scheduler)
        with pytest.raises(ExecutorUnavailable, match="went away"):
            list(stream)
        with pytest.raises(ExecutorUnavailable, match="cannot be reached"):
            service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False, use_cache=False)
    finally:
        service.close()
        kill_group(scheduler)
        kill_group(worker)


@pytest.mark.parametrize("env, message", [
    ({"EXECUTOR": "ray"}, "EXECUTOR must be one of process, dask"),
    ({"EXECUTOR": "dask"}, "EXECUTOR=dask needs DASK_SCHEDULER_ADDRESS"),
])
def test_a_bad_executor_setting_refuses_to_start(monkeypatch, env, message) -> None:
    from api.config import Settings

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()
    monkeypatch.setenv("EXECUTOR", "Dask")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://scheduler:8786")
    assert Settings.from_env().executor == "dask"


def test_a_cluster_that_cannot_import_this_package_is_told_apart_from_a_failing_task() -> None:
    """A scheduler or worker without this package on its path answers a 503 naming PYTHONPATH, not a 500."""
    from api.services.dask_fanout import _cannot_import, _missing_code

    try:
        try:
            raise ModuleNotFoundError("No module named 'api'")
        except ModuleNotFoundError as cause:
            raise RuntimeError("Error during deserialization of the task graph. This frequently\noccurs if ...") \
                from cause
    except RuntimeError as exc:
        scheduler_said = exc
    assert _missing_code(scheduler_said) and _missing_code(ImportError("no api"))
    assert not _missing_code(ValueError("a task's own failure")) and not _missing_code(RuntimeError("boom"))
    message = _cannot_import("tcp://s:8786", scheduler_said)
    assert "PYTHONPATH" in message and "\n" not in message
