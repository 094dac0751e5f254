"""The multiprocessing fan-out, kept in one small module so its policy is easy to change.

One warm `multiprocessing.Pool` per server process, created lazily on the
first parallel batch and reused: a pool costs ~10 ms to start with `fork`
but ~1 s with `spawn`/`forkserver`, and its workers keep their own database
connection for the pool's life. Pools are keyed by pid, so a gunicorn worker
(or any forked child) never reuses a pool its parent created.

Results are collected task by task, never with a bare `Pool.map`: that waits
forever when a worker is killed (CPython issue 66587). Each worker writes the
task it is running, and since when, into a small shared table; the parent
watches it, so a task whose worker died becomes a `TaskFailure("worker_lost")`
and one that runs past `task_timeout` has its worker killed and becomes a
`TaskFailure("timeout")`. The pool replaces dead workers by itself; every other
task's result is kept. Results come back in input order, so a parallel run is
the sequential run with the same inputs, only faster.
"""
from __future__ import annotations

import atexit
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import Any

# Signals a host process (gunicorn's worker) may have taken over; a forked pool
# worker must answer them the default way, or Pool.terminate() cannot stop it.
_RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTTIN", "SIGTTOU")
_POLL_SECONDS = 0.02
_STALL_SECONDS = 2.0  # tasks pending, none running: the pool's queues are wedged
_IDLE = -1.0


@dataclass(frozen=True)
class TaskFailure:
    """A task that produced no result: its worker died ("worker_lost") or ran too long ("timeout")."""

    code: str
    message: str


@dataclass
class _WarmPool:
    pool: Pool
    slots: Any  # RawArray of (pid, task id, started) per worker slot
    size: int
    lock: threading.Lock  # one batch at a time per pool: the slot table is per task id


_POOLS: dict[tuple[int, str | None], _WarmPool] = {}
_LOCK = threading.Lock()

# set in each pool worker by _init_worker
_worker_slots: Any = None
_worker_slot: int = -1


def pool_size(n_tasks: int, max_processes: int = 8) -> int:
    """min(os.cpu_count(), tasks, max_processes), never below 1 (DESIGN.md's rule)."""
    return max(1, min(os.cpu_count() or 1, n_tasks, max_processes))


def _init_worker(slots: Any, claim_lock: Any, size: int, initializer: Callable[[], Any] | None) -> None:
    """Default signal handling, a slot in the shared task table, then the caller's initializer.

    Under gunicorn the worker is forked from a process whose SIGTERM handler
    only flags a shutdown; inherited, it made pool workers ignore terminate().
    """
    global _worker_slots, _worker_slot
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    me = os.getpid()
    with claim_lock:
        for i in range(size):
            pid = int(slots[3 * i])
            if pid == 0 or not _alive(pid):
                slots[3 * i], slots[3 * i + 1], slots[3 * i + 2] = me, _IDLE, 0.0
                _worker_slots, _worker_slot = slots, i
                break
    if initializer is not None:
        initializer()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_chunk(base: int, func: Callable[..., Any], items: list[tuple[int, tuple]],
               before_chunk: Callable[[list[tuple]], Any] | None = None) -> list[Any]:
    """Run several tasks in a pool worker, each with its id and start time in this worker's slot.

    Chunks keep the per-task IPC cost low; the slot still names the very task
    running, so a death or a hang is charged to that task alone. before_chunk
    (given every task's arguments) may prepare the chunk, e.g. read its data in
    one query; it must not raise.
    """
    slots, i = _worker_slots, _worker_slot
    out = []
    if before_chunk is not None:
        before_chunk([args for _, args in items])
    try:
        for index, args in items:
            if slots is not None and i >= 0:
                slots[3 * i + 2] = time.monotonic()
                slots[3 * i + 1] = float(base + index)
            out.append(func(*args))
    finally:
        if slots is not None and i >= 0:
            slots[3 * i + 1] = _IDLE
    return out


def _warm_pool(processes: int, start_method: str | None, initializer: Callable[[], Any] | None) -> _WarmPool:
    key = (os.getpid(), start_method)
    with _LOCK:
        warm = _POOLS.get(key)
        if warm is not None and getattr(warm.pool, "_state", None) == "RUN" and warm.size >= processes \
                and _workers_alive(warm.pool):
            return warm
        if warm is not None:
            _discard(warm.pool)
        ctx = mp.get_context(start_method)
        slots = ctx.RawArray("d", 3 * processes)
        pool = ctx.Pool(processes=processes, initializer=_init_worker,
                        initargs=(slots, ctx.Lock(), processes, initializer))
        warm = _POOLS[key] = _WarmPool(pool, slots, processes, threading.Lock())
        return warm


def run_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                start_method: str | None = None, initializer: Callable[[], Any] | None = None,
                task_timeout: float = 60.0,
                before_chunk: Callable[[list[tuple]], Any] | None = None) -> Iterator[Any]:
    """Yield func(*args) for every args tuple, in input order, as soon as each is ready.

    A task whose worker died yields TaskFailure("worker_lost"); one running
    longer than task_timeout seconds has its worker killed and yields
    TaskFailure("timeout"). Other tasks are unaffected. An exception raised by
    func itself is re-raised here (workers are expected to catch their own).
    """
    stalled: list[int] = []
    warm = _warm_pool(processes, start_method, initializer)
    with warm.lock:
        yield from _collect(warm, func, arg_tuples, task_timeout, stalled, before_chunk)
    if not stalled:
        return
    # Tasks stopped moving with no worker running them: the pool's queues are
    # wedged (a worker killed while holding a queue lock). Replace the pool and
    # run those tasks once more; what stalls again is reported lost.
    _forget(warm, start_method)
    retry = [arg_tuples[i] for i in stalled]
    warm = _warm_pool(processes, start_method, initializer)
    again: list[int] = []
    with warm.lock:
        yield from _collect(warm, func, retry, task_timeout, again, before_chunk)
    if again:
        _forget(warm, start_method)
        for _ in again:
            yield TaskFailure("worker_lost", "the worker pool stopped answering while this task was queued")


def _forget(warm: _WarmPool, start_method: str | None) -> None:
    with _LOCK:
        if _POOLS.get((os.getpid(), start_method)) is warm:
            del _POOLS[(os.getpid(), start_method)]
    _discard(warm.pool)


def _collect(warm: _WarmPool, func: Callable[..., Any], arg_tuples: Sequence[tuple],
             task_timeout: float, stalled: list[int],
             before_chunk: Callable[[list[tuple]], Any] | None = None) -> Iterator[Any]:
    """Yield results in order; on a stall, put the indices not yet yielded in `stalled` and stop."""
    pool, slots, n = warm.pool, warm.slots, len(arg_tuples)
    base = int(time.monotonic() * 1000) * 10_000  # task ids unique across batches of this pool
    chunks: dict[int, tuple[Any, list[int]]] = {}  # chunk id -> (async result, task indices)
    owner: dict[int, int] = {}  # task index -> chunk id

    ids = itertools.count()

    def submit(indices: list[int]) -> None:
        cid = next(ids)
        chunks[cid] = (pool.apply_async(_run_chunk, (base, func, [(i, arg_tuples[i]) for i in indices],
                                                     before_chunk)), indices)
        owner.update((i, cid) for i in indices)

    for start, stop in _guided_chunks(n, warm.size):
        submit(list(range(start, stop)))
    failed: dict[int, TaskFailure] = {}
    running: dict[int, tuple[int, float]] = {}  # pid -> (task index, started) as last seen
    done: dict[int, Any] = {}
    next_out = 0
    last_progress = time.monotonic()
    while next_out < n:
        for cid in [c for c, (r, _) in chunks.items() if r.ready()]:
            result, indices = chunks.pop(cid)
            done.update(zip(indices, result.get()))  # re-raises an exception of func itself
            last_progress = time.monotonic()
        while next_out < n and (next_out in done or next_out in failed):
            yield done.pop(next_out) if next_out in done else failed.pop(next_out)
            next_out += 1
        if next_out >= n:
            break
        for index, failure in _watch(warm, slots, base, owner, chunks, running, task_timeout):
            # the chunk died with its task: the task fails, the chunk's unfinished rest runs again
            failed[index] = failure
            _, indices = chunks.pop(owner[index])
            rest = [i for i in indices if i != index and i not in done and i not in failed]
            if rest:
                submit(rest)
            last_progress = time.monotonic()
        if running:
            last_progress = time.monotonic()
        elif chunks and time.monotonic() - last_progress > _STALL_SECONDS:
            stalled.extend(range(next_out, n))  # everything not yet delivered, in order
            return
        first = chunks.get(owner.get(next_out, -1))
        if first is not None:
            first[0].wait(_POLL_SECONDS)
        else:
            time.sleep(_POLL_SECONDS)


def _guided_chunks(n: int, workers: int, max_size: int = 32) -> list[tuple[int, int]]:
    """(start, stop) ranges that shrink toward the end: big chunks first keep IPC low,
    single tasks last keep the workers finishing together (guided self-scheduling)."""
    ranges, start = [], 0
    while start < n:
        size = max(1, min(max_size, (n - start) // (workers * 3)))
        ranges.append((start, start + size))
        start += size
    return ranges


def _watch(warm: _WarmPool, slots: Any, base: int, owner: dict[int, int], chunks: dict[int, Any],
           running: dict[int, tuple[int, float]], task_timeout: float) -> list[tuple[int, TaskFailure]]:
    """Read the slot table: note who runs what; return the tasks whose worker died or overran."""
    now = time.monotonic()
    for s in range(warm.size):
        pid, task, started = int(slots[3 * s]), slots[3 * s + 1], slots[3 * s + 2]
        index = int(task) - base
        if pid and task != _IDLE and owner.get(index) in chunks:
            running[pid] = (index, started)
    failures = []
    for pid, (index, started) in list(running.items()):
        if owner.get(index) not in chunks:
            del running[pid]
            continue
        if not _alive_child(pid):
            # the dead worker's slot still names its last task, unless a replacement took it over
            for s in range(warm.size):
                if int(slots[3 * s]) == pid and slots[3 * s + 1] != _IDLE:
                    last = int(slots[3 * s + 1]) - base
                    index = last if owner.get(last) in chunks else index
            failures.append((index, TaskFailure(
                "worker_lost", "the worker process running this backtest died (killed, crashed or out of memory)")))
        elif now - started > task_timeout:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            failures.append((index, TaskFailure(
                "timeout", f"the backtest ran longer than {task_timeout:g} s; its worker was stopped")))
        else:
            continue
        del running[pid]
    return failures


def _alive_child(pid: int) -> bool:
    """False once the worker has exited (a zombie not yet reaped by the pool counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ", 1)[1][:1] not in (b"Z", b"X")
    except (FileNotFoundError, IndexError):
        return False
    except OSError:
        return _alive(pid)


def shutdown_pools() -> None:
    """Stop this process's pools (at exit, and in tests)."""
    with _LOCK:
        mine = [k for k in _POOLS if k[0] == os.getpid()]
        pools = [_POOLS.pop(k) for k in mine]
    for warm in pools:
        _discard(warm.pool)


def _workers_alive(pool: Pool) -> bool:
    """False when a worker of this pool has died since its last batch (then the pool is replaced:
    a worker killed while idle may have taken the task queue's read lock with it)."""
    return all(p.exitcode is None for p in getattr(pool, "_pool", []))


def _discard(pool: Pool) -> None:
    """Stop a pool for good, even one whose task-queue lock died with a worker.

    An idle worker blocks on the task queue holding its read lock; killed
    there, it never gives the lock back, and Pool.terminate() waits for that
    lock forever. So: stop the pool replacing workers, kill every worker, hand
    back a lock that no living process can hold any more, then terminate.
    """
    from multiprocessing.pool import TERMINATE

    handler = getattr(pool, "_worker_handler", None)
    if handler is not None:
        handler._state = TERMINATE  # what terminate() does first: no new workers from here on
        handler.join(timeout=1.0)
    for worker in list(getattr(pool, "_pool", [])):
        if worker.exitcode is None:
            worker.kill()
        worker.join(timeout=2.0)
    lock = getattr(getattr(pool, "_inqueue", None), "_rlock", None)
    if lock is not None:  # free it whoever holds it: every worker is dead now
        lock.acquire(timeout=0.05)
        lock.release()
    pool.terminate()
    pool.join()


atexit.register(shutdown_pools)
