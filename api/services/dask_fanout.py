"""EXECUTOR=dask (issue 14): the fan-out's tasks on a Dask cluster instead of this host's process pool.

The same static per-crypto worker functions run, a chunk of cryptos per Dask
task (so a chunk's candles are read in one query, as in a pool worker), in Dask
worker processes that import this package. Each keeps its own database
connection (one per thread, as a pool worker keeps one), opened from the
worker's own `DATABASE_URL` when it has one (`DatabaseWorkerPlugin`). Results
come back in input order, so an answer is the sequential one bit for bit.

What can go wrong, and what it becomes:
- a worker dies: the scheduler runs its tasks again on another worker (Dask's
  `allowed-failures`, 3 by default); past that the chunk's cryptos are
  `worker_lost`, each its own error entry;
- a chunk whose result does not come within task_timeout x its size of the
  chunk before it (results are awaited in input order): that chunk is
  cancelled and its cryptos are `timeout`;
- the scheduler cannot be reached within CONNECT_SECONDS, has no worker for
  WORKERS_SECONDS, or goes away mid-batch (Dask cancels every future of a
  client that lost its scheduler): ExecutorUnavailable (HTTP 503), nothing stored.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dask.config
import yaml
from distributed import Client, KilledWorker, WorkerPlugin, get_worker
from distributed.client import FutureCancelledError

from api.services.errors import ExecutorUnavailable
from api.services.fanout import TaskFailure, guided_chunks
from api.services.read_ahead import reading_ahead

log = logging.getLogger(__name__)

WORKER_SETTINGS = Path(__file__).resolve().parents[2] / "dask.yaml"  # DASK_CONFIG for `dask worker`s
CONNECT_SECONDS = 5.0  # a scheduler that does not answer in this is unreachable; for as long again after, requests
# are refused at once (a burst of them would otherwise queue 5 s each behind the batch slot)
WORKERS_SECONDS = 5.0  # a cluster without a worker for this long cannot run a batch
_POLL_SECONDS = 0.5  # how often a waiting batch looks at the scheduler connection
LOST = "the Dask worker running this backtest died, and so did its retries on other workers"


def use_worker_settings() -> None:
    """Merge dask.yaml (what a `dask worker` reads through DASK_CONFIG) into this process's Dask config, for a
    LocalCluster started here (the tests, the benchmarks) to spawn its workers as a deployed cluster does."""
    dask.config.update(dask.config.config, yaml.safe_load(WORKER_SETTINGS.read_text()), priority="new")


class DatabaseWorkerPlugin(WorkerPlugin):
    """Runs in every Dask worker as it starts (and in each that joins later): its own DATABASE_URL (when set)
    for its connections, and the engine's compiled kernels loaded before the first task needs them. The
    service imports this module only with EXECUTOR=dask."""

    name = "crypto-backtest-database"

    def setup(self, worker: Any) -> None:
        from api.db.connection import use_worker_database_url
        from api.services.backtest_service import warm_worker

        url = os.environ.get("DATABASE_URL")
        if url:
            use_worker_database_url(url)
        warm_worker()


def run_chunk(func: Callable[..., Any], chunk: Sequence[tuple]) -> tuple[str, list[Any]]:
    """One Dask task: func(*args) for a chunk's tasks in this worker, its candles read ahead in one query;
    (this worker's address, the results). A func that raises raises here, as it does in a pool worker."""
    with reading_ahead(list(chunk)):
        out = [func(*args) for args in chunk]
    return get_worker().address, out


class DaskRun:
    """One batch's results in input order (TaskFailure for a lost task); `workers` counts the Dask workers
    that ran its chunks. Close it to cancel what is still running."""

    def __init__(self, client: Any, func: Callable[..., Any], arg_tuples: Sequence[tuple], slots: int,
                 task_timeout: float, address: str) -> None:
        self._client, self._address, self._timeout = client, address, task_timeout
        self._addresses: set[str] = set()
        self._chunks = guided_chunks(len(arg_tuples), max(1, slots))
        batch = uuid.uuid4().hex
        name = getattr(func, "__name__", "task").strip("_")
        self._futures = [client.submit(run_chunk, func, list(arg_tuples[start:stop]), key=f"{name}-{batch}-{i}",
                                       pure=False, priority=-i)
                         for i, (start, stop) in enumerate(self._chunks)]
        self._results = self._gather()

    @property
    def workers(self) -> int:
        return len(self._addresses)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._results)

    def close(self) -> None:
        self._results.close()

    def _gather(self) -> Iterator[Any]:
        last_done = time.monotonic()
        try:
            for future, (start, stop) in zip(self._futures, self._chunks):
                size = stop - start
                while True:
                    try:
                        address, out = future.result(timeout=_POLL_SECONDS)
                    except KilledWorker:
                        yield from [TaskFailure("worker_lost", LOST)] * size
                    except TimeoutError:
                        self._check_scheduler()
                        if time.monotonic() - last_done <= self._timeout * size:
                            continue
                        future.cancel()
                        yield from [TaskFailure("timeout", f"no result from the Dask cluster within "
                                                           f"{self._timeout:g} s per backtest")] * size
                    except Exception as exc:
                        if _missing_code(exc):  # a scheduler or worker without this package
                            raise ExecutorUnavailable(_cannot_import(self._address, exc)) from None
                        if self._client.status != "running" or _cancelled(exc):
                            raise self._unavailable("went away during the batch") from None
                        raise  # the worker function itself raised: as the pool re-raises it
                    else:
                        self._addresses.add(address)
                        yield from out
                    last_done = time.monotonic()
                    break
        finally:
            with contextlib.suppress(Exception):
                self._client.cancel(self._futures)

    def _check_scheduler(self) -> None:
        if self._client.status != "running":
            raise self._unavailable("went away during the batch")

    def _unavailable(self, what: str) -> ExecutorUnavailable:
        return ExecutorUnavailable(f"the Dask scheduler at {self._address} {what}; nothing was stored, try again "
                                   "shortly")


def _cannot_import(address: str, exc: BaseException) -> str:
    first = str(exc).replace("\n", " ").split(". ")[0].rstrip(".")  # its first sentence
    return (f"the Dask cluster at {address} cannot run this service's code ({type(exc).__name__}: {first}): start "
            "its scheduler and workers from a checkout of this service, with PYTHONPATH pointing at it; nothing "
            "was stored")


def _missing_code(exc: BaseException) -> bool:
    """The cluster could not unpickle the task: its scheduler says "Error during deserialization of the task
    graph" (caused by an ImportError), a worker raises the ImportError itself."""
    return isinstance(exc, ImportError) or isinstance(exc.__cause__, ImportError) or (
        isinstance(exc, RuntimeError) and "deserialization of the task graph" in str(exc))


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, (FutureCancelledError, asyncio.CancelledError, OSError))


class DaskCluster:
    """This process's connection to a Dask scheduler: one Client, made on first use (never before a fork)
    and made again once the scheduler was lost."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._client: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._failed_at = -float("inf")  # when a connect last failed

    def run(self, func: Callable[..., Any], arg_tuples: Sequence[tuple], task_timeout: float) -> DaskRun:
        client = self._connected()
        slots = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        return DaskRun(client, func, arg_tuples, slots, task_timeout, self.address)

    def _connected(self) -> Any:
        with self._lock:
            if time.monotonic() - self._failed_at < CONNECT_SECONDS:  # a burst does not wait 5 s per request
                raise ExecutorUnavailable(f"the Dask scheduler at {self.address} could not be reached moments ago; "
                                          "nothing was run, try again shortly")
            client = self._client if self._pid == os.getpid() else None
            if client is not None and client.status != "running":
                with contextlib.suppress(Exception):
                    client.close(timeout=1)
                client = None
            if client is None:
                try:
                    client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    self._failed_at = time.monotonic()
                    raise ExecutorUnavailable(f"the Dask scheduler at {self.address} cannot be reached ({exc}); "
                                              "nothing was run, try again shortly") from None
                try:
                    client.register_plugin(DatabaseWorkerPlugin())
                except Exception as exc:  # the scheduler (or a worker) unpickles it: it must import this package
                    with contextlib.suppress(Exception):
                        client.close(timeout=1)
                    raise ExecutorUnavailable(_cannot_import(self.address, exc)) from None
                self._client, self._pid = client, os.getpid()
        try:
            client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except (OSError, TimeoutError):
            raise ExecutorUnavailable(f"the Dask cluster at {self.address} has no worker; nothing was run, try "
                                      "again once workers have joined (a worker that cannot import this service's "
                                      "package never joins: start workers with PYTHONPATH pointing at a checkout)"
                                      ) from None
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                with contextlib.suppress(Exception):
                    self._client.close(timeout=2)
            self._client = None
