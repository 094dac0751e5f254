"""Admission of backtests into one server process: a few run, a few wait their turn, the rest are told to retry.

With threaded workers a process accepts several requests at once. Refusing
every batch beyond the running ones (429) turned a burst that lands on one
process into refusals while another process sat idle; letting every thread
wait would let batches take all of a process's threads, and `/api/health`
would wait behind them. So: `running` at once, up to `waiting` more queue for
at most `wait_seconds`, and anything beyond that is Busy (429 + Retry-After)
at once, which always leaves threads free for other requests.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from api.services.errors import Busy


class Admission:
    """A bounded semaphore with a bounded, time-limited queue in front of it."""

    def __init__(self, running: int = 1, waiting: int = 2, wait_seconds: float = 30.0) -> None:
        self._slots = threading.BoundedSemaphore(max(1, running))
        self._waiting_max = max(0, waiting)
        self._wait_seconds = max(0.0, wait_seconds)
        self._waiting = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a slot for the block: at once if one is free, else after waiting in the queue; else Busy."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self._waiting_max:
                    raise Busy("this server process is running and queueing as many backtests as it takes; "
                               "retry shortly", retry_after=1)
                self._waiting += 1
            try:
                got = self._slots.acquire(timeout=self._wait_seconds)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise Busy(f"no backtest slot came free within {self._wait_seconds:g} s; retry shortly", retry_after=1)
        try:
            yield
        finally:
            self._slots.release()
