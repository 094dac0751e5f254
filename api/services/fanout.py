"""The multiprocessing fan-out, kept in one small module so its policy is easy to change.

Results come back in the order of the arguments, so a parallel run is the
sequential run with the same inputs, only faster.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any


def pool_size(n_tasks: int, max_processes: int = 8) -> int:
    """min(cpu_count, tasks, max_processes), never below 1."""
    return max(1, min(os.cpu_count() or 1, n_tasks, max_processes))


def map_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                start_method: str | None = None) -> list[Any]:
    """Run func(*args) for every args tuple in a Pool of `processes`; results in input order."""
    ctx = mp.get_context(start_method)
    with ctx.Pool(processes=processes) as pool:
        return pool.starmap(func, arg_tuples)
