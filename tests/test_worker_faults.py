"""A pool worker that is killed, exits or hangs costs its crypto only, never the batch or the server.

Faults are injected by patching the per-crypto function before a fresh `fork`
pool is created, so only the pool's workers run the faulty code.
"""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

import api.services.backtest_service as svc_module
from api.db.connection import db_config_for
from api.services import CryptoBacktestService
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


def _faulty(victim: str, fault):
    real = svc_module._backtest_crypto

    def backtest(crypto, *args, **kwargs):
        if crypto["symbol"] == victim and os.getpid() != PARENT:
            fault()
        return real(crypto, *args, **kwargs)
    return backtest


PARENT = os.getpid()
FAULTS = {
    "sigkill": (lambda: os.kill(os.getpid(), signal.SIGKILL), "worker_lost"),
    "os_exit": (lambda: os._exit(3), "worker_lost"),
    "hang": (lambda: time.sleep(60), "timeout"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_becomes_that_cryptos_error(demo_db, service, monkeypatch, fault) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # e.g. a forkserver from earlier tests
    expected = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)
    inject, code = FAULTS[fault]
    monkeypatch.setattr(svc_module, "_backtest_crypto", _faulty("SYN005", inject))
    started = time.monotonic()
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True)
    assert time.monotonic() - started < TIMEOUT + 10
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

    # the next request works, and nothing is left behind once the pool is shut down
    monkeypatch.undo()
    shutdown_pools()
    again = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)
    assert _strip(again["results"]) == _strip(expected["results"])
    shutdown_pools()
    leftovers = [p for p in psutil.Process().children(recursive=True)
                 if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []


@pytest.mark.timeout(60)
def test_idle_workers_killed_between_batches_cost_nothing(demo_db, service) -> None:
    """An idle worker waits on the task queue holding its read lock; killed there (OOM killer, a stray
    `pkill`), it leaves that lock taken, so its replacements never get a task and Pool.terminate()
    blocks forever. The next batch must still answer, and shutting the pool down must not hang."""
    expected = service.run_strategy_against_all_cryptos(1, {}, use_parallel=False, store=False)
    service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)  # the pool is warm
    from api.services import fanout

    pids = [w.pid for warm in fanout._POOLS.values() for w in warm.pool._pool]  # the pool's workers only
    workers = [psutil.Process(pid) for pid in pids]
    assert len(workers) >= 2
    for p in workers:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(workers, timeout=5)
    started = time.monotonic()
    out = service.run_strategy_against_all_cryptos(1, {}, use_parallel=True, store=False)
    assert time.monotonic() - started < 15
    assert _strip(out["results"]) == _strip(expected["results"])
    started = time.monotonic()
    shutdown_pools()
    assert time.monotonic() - started < 5
