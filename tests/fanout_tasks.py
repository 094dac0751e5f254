"""Tasks for the fan-out tests, in a module that imports nothing heavy.

A new worker imports a task's module on its first task; kept light, so a
worker replaced in a storm of kills is working again within milliseconds.
"""
from __future__ import annotations

import os
import time


def payload(i: int, size: int) -> bytes:
    """A task whose answer is big: `size` bytes that depend on i (a little work, then a large write)."""
    seed = (i * 2654435761) % 251
    return bytes([seed]) * size + i.to_bytes(4, "big")


def failing(i: int) -> int:
    if i == 3:
        raise ValueError("task 3 fails on purpose")
    return i


def nap(seconds: float, folder: str) -> int:
    """Note this worker's pid in folder, then sleep: a task that is visibly running."""
    with open(os.path.join(folder, str(os.getpid())), "w"):
        pass
    time.sleep(seconds)
    return os.getpid()
