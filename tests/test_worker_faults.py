"""A pool worker that is killed, exits, hangs or is stopped costs its crypto only, never the batch or the server.

Faults are injected by patching the per-crypto function before a fresh `fork`
pool is created, so only the pool's workers run the faulty code. Each test's
timeout bounds the answer (TASK_TIMEOUT + 10 s); no test measures time itself.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

import api.services.backtest_service as svc_module
from api.db.connection import db_config_for
from api.services import CryptoBacktestService, walkforward_run
from api.services.fanout import shutdown_pools

TIMEOUT = 2.0


def _strip(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


@pytest.fixture
def service(db_engine, db_url, settings):
    shutdown_pools()
    yield CryptoBacktestService(db_engine, db_config_for(db_url, settings), start_method="fork",
                                task_timeout=TIMEOUT)
    shutdown_pools()


def _faulty(victim: str, fault, real=None):
    real = real or svc_module._backtest_crypto

    def backtest(crypto, *args, **kwargs):
        if crypto["symbol"] == victim and os.getpid() != PARENT:
            fault()
        return real(crypto, *args, **kwargs)
    backtest.__wrapped__ = real
    return backtest


PARENT = os.getpid()
FAULTS = {
    "sigkill": (lambda: os.kill(os.getpid(), signal.SIGKILL), "worker_lost"),
    "os_exit": (lambda: os._exit(3), "worker_lost"),
    "hang": (lambda: time.sleep(60), "timeout"),
    "sigstop": (lambda: os.kill(os.getpid(), signal.SIGSTOP), "worker_lost"),
}


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Every process the test started is gone once its pools are shut down."""
    before = _children()  # e.g. a forkserver from earlier tests
    yield
    shutdown_pools()
    assert _children() - before == set()


@pytest.mark.timeout(TIMEOUT * 8 + 20)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_becomes_that_cryptos_error(demo_db, service, monkeypatch, no_leftovers, fault) -> None:
    expected = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)
    inject, code = FAULTS[fault]
    monkeypatch.setattr(svc_module, "_backtest_crypto", _faulty("SYN005", inject))
    monkeypatch.setattr(svc_module, "_grid_crypto", _faulty("SYN005", inject, svc_module._grid_crypto))
    monkeypatch.setattr(svc_module, "montecarlo_crypto", _faulty("SYN005", inject, svc_module.montecarlo_crypto))
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, use_cache=False)
    assert out["summary"]["retryable"] == 1
    victim = next(r for r in out["results"] if r["symbol"] == "SYN005")
    assert victim["error"]["code"] == code and victim["total_return"] is None
    assert out["summary"]["failed"] == 1 and out["summary"]["successful"] == 23
    others = [r for r in out["results"] if r["symbol"] != "SYN005"]
    assert _strip(others) == _strip([r for r in expected["results"] if r["symbol"] != "SYN005"])

    # the sweep goes through the same collector
    sweep = service.run_parameter_sweep(1, [{}, {"rsi_period": 9}], use_parallel=True, store=False)
    for setting in sweep["settings"]:
        lost = next(r for r in setting["results"] if r["symbol"] == "SYN005")
        assert lost["error"]["code"] == code
    # and so does a grid, whose stored row of the lost crypto never answers a repeat
    grid = service.run_grid_sweep(1, {"rsi_period": [9, 14]}, use_parallel=True)
    assert grid["summary"]["retryable"] == 2 and grid["summary"]["failed"] == 2
    for setting in grid["top"]:
        assert next(r for r in setting["results"] if r["symbol"] == "SYN005")["error"]["code"] == code
    # and a Monte Carlo
    mc = service.run_monte_carlo(1, {}, method="trades", paths=10, use_parallel=True)
    assert mc["summary"]["retryable"] == 1 and mc["summary"]["successful"] == 23
    assert next(r for r in mc["results"] if r["symbol"] == "SYN005")["error"]["code"] == code
    # and a walk-forward, lost in its training pass or in its testing pass
    for name in ("train_crypto", "run_test_spans"):
        monkeypatch.setattr(walkforward_run, name, _faulty("SYN005", inject, getattr(walkforward_run, name)))
        shutdown_pools()  # the next workers are forked with the fault in them
        for select in ("per_crypto", "universe"):
            wf = service.run_walk_forward(1, {"rsi_period": [9, 14]}, train_days=120, test_days=60, select=select,
                                          use_parallel=True)
            assert wf["summary"]["retryable"] == 1 and wf["summary"]["successful"] == 23
            assert next(r for r in wf["results"] if r["symbol"] == "SYN005")["error"]["code"] == code
        monkeypatch.setattr(walkforward_run, name, getattr(walkforward_run, name).__wrapped__)

    # the next request works (the faulty workers are gone), and nothing is left behind
    monkeypatch.undo()
    shutdown_pools()
    again = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)
    assert _strip(again["results"]) == _strip(expected["results"])
    regrid = service.run_grid_sweep(1, {"rsi_period": [9, 14]}, use_parallel=True)
    assert regrid["summary"]["computed"] == 2 and regrid["summary"]["from_store"] == 46  # the lost one only
    assert regrid["summary"]["retryable"] == 0


def _pool_workers() -> list[psutil.Process]:
    from api.services import fanout

    return [psutil.Process(pid) for pool in fanout._POOLS.values() for pid in pool.pids()]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_idle_workers_killed_or_stopped_between_batches_cost_nothing(demo_db, service, no_leftovers, sig) -> None:
    """A worker killed (OOM killer, a stray `pkill`) or stopped while idle is replaced before the next
    batch gives it a task: that batch loses nothing, and shutting the pool down is bounded."""
    expected = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)
    service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)  # the pool is warm
    workers = _pool_workers()
    assert len(workers) >= 2
    for p in workers:
        p.send_signal(sig)
    if sig == signal.SIGKILL:
        psutil.wait_procs(workers, timeout=5)
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)
    assert _strip(out["results"]) == _strip(expected["results"])
    assert not {p.pid for p in workers} & {p.pid for p in _pool_workers()}  # all replaced
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in workers)


@pytest.mark.timeout(60)
def test_worker_killed_halfway_through_sending_its_result(demo_db, service, monkeypatch, no_leftovers) -> None:
    """The kill lands inside a frame of answers: half of it is in the pipe. One crypto is lost, no more."""
    from api.services import fanout

    expected = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)
    real_send = fanout._send_blocking

    def send_half_then_die(fd, message):
        if message[0] == "answers" and any(r.get("symbol") == "SYN007" for _, _, r in message[2]):
            import pickle

            payload = pickle.dumps(message)
            os.write(fd, fanout._HEADER.pack(len(payload)) + payload[: len(payload) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real_send(fd, message)

    monkeypatch.setattr(fanout, "_send_blocking", send_half_then_die)  # inherited by the fork pool's workers
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)
    # one crypto is charged (the task its slot named when it died); every other one is computed again
    lost = [r for r in out["results"] if r["error"] is not None]
    assert [r["error"]["code"] for r in lost] == ["worker_lost"]
    others = [r for r in out["results"] if r["error"] is None]
    assert _strip(others) == _strip([r for r in expected["results"] if r["symbol"] != lost[0]["symbol"]])
    monkeypatch.undo()
    shutdown_pools()
    assert _strip(service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)["results"]) \
        == _strip(expected["results"])
