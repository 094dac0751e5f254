"""The multiprocessing fan-out, kept in one small module so its policy is easy to change.

One warm `multiprocessing.Pool` per server process, created lazily on the
first parallel batch and reused: a pool costs ~10 ms to start with `fork`
but ~1 s with `spawn`/`forkserver`, and its workers keep their own database
connection for the pool's life. Pools are keyed by pid, so a gunicorn worker
(or any forked child) never reuses a pool its parent created. Results come
back in the order of the arguments, so a parallel run is the sequential run
with the same inputs, only faster.
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.pool import Pool
from typing import Any

# Signals a host process (gunicorn's worker) may have taken over; a forked pool
# worker must answer them the default way, or Pool.terminate() cannot stop it.
_RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTTIN", "SIGTTOU")

_POOLS: dict[tuple[int, str | None], Pool] = {}
_LOCK = threading.Lock()


def pool_size(n_tasks: int, max_processes: int = 8) -> int:
    """min(os.cpu_count(), tasks, max_processes), never below 1 (DESIGN.md's rule)."""
    return max(1, min(os.cpu_count() or 1, n_tasks, max_processes))


def _init_worker(initializer: Callable[[], Any] | None) -> None:
    """Give a pool worker default signal handling, then run the caller's initializer.

    Under gunicorn the worker is forked from a process whose SIGTERM handler
    only flags a shutdown; inherited, it made pool workers ignore terminate()
    and the request hang in Pool.__exit__.
    """
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    if initializer is not None:
        initializer()


def warm_pool(processes: int, start_method: str | None = None,
              initializer: Callable[[], Any] | None = None) -> Pool:
    """This process's pool for start_method, started on first use with `processes` workers."""
    key = (os.getpid(), start_method)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is not None and getattr(pool, "_state", None) == "RUN" and pool._processes >= processes:
            return pool
        if pool is not None:
            _discard(pool)
        ctx = mp.get_context(start_method)
        pool = ctx.Pool(processes=processes, initializer=_init_worker, initargs=(initializer,))
        _POOLS[key] = pool
        return pool


def map_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                start_method: str | None = None, initializer: Callable[[], Any] | None = None) -> list[Any]:
    """Run func(*args) for every args tuple on the warm pool; results in input order."""
    pool = warm_pool(processes, start_method, initializer)
    try:
        return pool.starmap(func, arg_tuples)
    except BaseException:
        with _LOCK:  # a pool that failed mid-map is not trusted again
            _POOLS.pop((os.getpid(), start_method), None)
        _discard(pool)
        raise


def imap_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                 start_method: str | None = None, initializer: Callable[[], Any] | None = None) -> Iterator[Any]:
    """Like map_in_pool, but yields each result (in input order) as soon as it is ready.

    Lets the caller store early results while later ones are still computed.
    """
    pool = warm_pool(processes, start_method, initializer)
    chunksize = max(1, len(arg_tuples) // (processes * 8))
    try:
        yield from pool.imap(_star, [(func, args) for args in arg_tuples], chunksize=chunksize)
    except BaseException:
        with _LOCK:
            _POOLS.pop((os.getpid(), start_method), None)
        _discard(pool)
        raise


def _star(func_and_args: tuple[Callable[..., Any], tuple]) -> Any:
    func, args = func_and_args
    return func(*args)


def shutdown_pools() -> None:
    """Stop this process's pools (at exit, and in tests)."""
    with _LOCK:
        mine = [k for k in _POOLS if k[0] == os.getpid()]
        pools = [_POOLS.pop(k) for k in mine]
    for pool in pools:
        _discard(pool)


def _discard(pool: Pool) -> None:
    pool.terminate()
    pool.join()


atexit.register(shutdown_pools)
