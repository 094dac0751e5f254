"""Read-ahead of candles for the tasks about to run in this thread (a pool chunk, a sequential run).

Each task takes its candles from a group read in one query (as many following
cryptos as fit in READ_AHEAD_BYTES of the fields asked for) instead of asking
the database alone: per-query wake-ups of server and client were about half
of an hourly batch. A group holds only the fields its run asked for; a task
that asks for a field its buffered series lacks reads its group again.
The plan lives in a context variable, so every thread (two batches in one
server process) has its own and a plan never outlives the run that made it.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from api.db import repository as repo

log = logging.getLogger(__name__)

READ_AHEAD_BYTES = 2 << 20  # payload per read-ahead query (8 bytes per field and candle), however many cryptos


def group_candles(fields: frozenset[str]) -> int:
    """Candles per read-ahead query for these fields: 262,144 of closes alone, 43,690 of all six."""
    return READ_AHEAD_BYTES // (8 * max(1, len(fields)))


def _fields(fields: Iterable[str]) -> frozenset[str]:
    return frozenset(repo.candle_fields(fields))  # checks the names (cached per set)


class ReadAheadPlan:
    """The cryptos of the tasks to come, in order, and the group of candles read last."""

    def __init__(self, cryptos: Sequence[tuple[int, int]]) -> None:
        self.order = list(cryptos)  # (crypto id, candles) in task order
        self.position = {cid: i for i, (cid, _) in enumerate(self.order)}
        self.buffer: dict[int, repo.PriceSeries] = {}

    def take(self, conn: Any, crypto_id: int, fields: frozenset[str]) -> repo.PriceSeries | None:
        """This crypto's candles, exactly `fields` of them, from its group (reading the group when it is not
        buffered or lacks one of them); None if not planned."""
        if crypto_id not in self.position:
            return None
        buffered = self.buffer.get(crypto_id)
        if buffered is None or not fields <= buffered.fields():
            self._read_group_from(conn, self.position[crypto_id], fields)
        series = self.buffer.pop(crypto_id, None)
        if series is not None and series.fields() != fields:  # read for a run that wanted more: hand out these
            series = dataclasses.replace(series, **{name: None for name in series.fields() - fields}, read=fields)
        return series

    def _read_group_from(self, conn: Any, start: int, fields: frozenset[str]) -> None:
        group, total, limit = [], 0, group_candles(fields)
        for crypto_id, candles in self.order[start:]:
            if group and total + candles > limit:
                break
            group.append(crypto_id)
            total += candles
        self.buffer.clear()
        try:
            self.buffer.update(repo.load_candles_many(conn, group, fields))
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


def take_candles(conn: Any, crypto_id: int, fields: Iterable[str]) -> repo.PriceSeries:
    """This crypto's candles, exactly `fields` of them (names of repo.CANDLE_FIELDS; the others None):
    from the current plan's group when planned, else read alone."""
    wanted = _fields(fields)
    plan = _CURRENT.get()
    series = plan.take(conn, crypto_id, wanted) if plan is not None else None
    return series if series is not None else repo.load_candles(conn, crypto_id, wanted)


def current_plan() -> ReadAheadPlan | None:
    """The plan of this thread's current run (tests check none is left behind)."""
    return _CURRENT.get()


def _plan_of(task_args: list[tuple]) -> ReadAheadPlan:
    return ReadAheadPlan([(int(a[0]["id"]), int(a[0].get("candles") or 0)) for a in task_args])
