"""The multiprocessing fan-out, kept in one small module so its policy is easy to change.

Results come back in the order of the arguments, so a parallel run is the
sequential run with the same inputs, only faster.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

# Signals a host process (gunicorn's worker) may have taken over; a forked pool
# worker must answer them the default way, or Pool.terminate() cannot stop it.
_RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTTIN", "SIGTTOU")


def pool_size(n_tasks: int, max_processes: int = 8) -> int:
    """min(cpu_count, tasks, max_processes), never below 1."""
    return max(1, min(os.cpu_count() or 1, n_tasks, max_processes))


def _init_worker() -> None:
    """Give a pool worker default signal handling.

    Under gunicorn the worker is forked from a process whose SIGTERM handler
    only flags a shutdown; inherited, it made pool workers ignore terminate()
    and the request hang in Pool.__exit__.
    """
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)


def map_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                start_method: str | None = None) -> list[Any]:
    """Run func(*args) for every args tuple in a Pool of `processes`; results in input order."""
    ctx = mp.get_context(start_method)
    pool = ctx.Pool(processes=processes, initializer=_init_worker)
    try:
        results = pool.starmap(func, arg_tuples)
        pool.close()  # let workers finish and exit on their own
        pool.join()
        return results
    finally:
        pool.terminate()
