"""Read-ahead of candles for the tasks about to run in this thread (a pool chunk, a sequential run).

Each task takes its candles from a group read in one query (as many following
cryptos as fit in READ_AHEAD_CANDLES) instead of asking the database alone:
per-query wake-ups of server and client were about half of an hourly batch.
The plan lives in a context variable, so every thread (two batches in one
server process) has its own and a plan never outlives the run that made it.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from api.db import repository as repo

log = logging.getLogger(__name__)

READ_AHEAD_CANDLES = 43_690  # candles per read-ahead query (48 bytes each: 2 MB), however many cryptos that makes


class ReadAheadPlan:
    """The cryptos of the tasks to come, in order, and the group of candles read last."""

    def __init__(self, cryptos: Sequence[tuple[int, int]]) -> None:
        self.order = list(cryptos)  # (crypto id, candles) in task order
        self.position = {cid: i for i, (cid, _) in enumerate(self.order)}
        self.buffer: dict[int, repo.PriceSeries] = {}

    def take(self, conn: Any, crypto_id: int) -> repo.PriceSeries | None:
        """This crypto's candles from its group (reading the group when needed); None if not planned."""
        if crypto_id not in self.position:
            return None
        if crypto_id not in self.buffer:
            self._read_group_from(conn, self.position[crypto_id])
        return self.buffer.pop(crypto_id, None)

    def _read_group_from(self, conn: Any, start: int) -> None:
        group, total = [], 0
        for crypto_id, candles in self.order[start:]:
            if group and total + candles > READ_AHEAD_CANDLES:
                break
            group.append(crypto_id)
            total += candles
        self.buffer.clear()
        try:
            self.buffer.update(repo.load_candles_many(conn, group))
        except Exception as exc:  # each task then reads (and reports) its own candles
            log.warning("read-ahead of %d cryptos failed (%s: %s); each reads its own", len(group),
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self.buffer.clear()


_CURRENT: contextvars.ContextVar[ReadAheadPlan | None] = contextvars.ContextVar("read_ahead_plan", default=None)


def plan_read_ahead(task_args: list[tuple]) -> None:
    """Plan the read-ahead for tasks about to run here, in this order (each task's crypto is args[0]).

    The fan-out calls this before a chunk in a pool worker; the plan stays
    until the next chunk replaces it (one chunk at a time per worker).
    """
    _CURRENT.set(_plan_of(task_args))


@contextlib.contextmanager
def reading_ahead(task_args: list[tuple]) -> Iterator[None]:
    """The read-ahead planned for the tasks run inside the block, and gone after it."""
    token = _CURRENT.set(_plan_of(task_args))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def take_candles(conn: Any, crypto_id: int) -> repo.PriceSeries:
    """This crypto's candles: from the current plan's group when planned, else read alone."""
    plan = _CURRENT.get()
    series = plan.take(conn, crypto_id) if plan is not None else None
    return series if series is not None else repo.load_candles(conn, crypto_id)


def current_plan() -> ReadAheadPlan | None:
    """The plan of this thread's current run (tests check none is left behind)."""
    return _CURRENT.get()


def _plan_of(task_args: list[tuple]) -> ReadAheadPlan:
    return ReadAheadPlan([(int(a[0]["id"]), int(a[0].get("candles") or 0)) for a in task_args])
