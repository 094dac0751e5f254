"""The process fan-out: warm worker processes, one pipe each, supervised by the caller.

Why not `multiprocessing.Pool`: all of its workers read tasks from one pipe
and write results to one other pipe, each guarded by a lock shared between
processes. A worker killed while holding one of those locks (waiting for a
task, writing a result) leaves it taken for good, and one killed halfway
through writing a result leaves half a message in the pipe every other worker
writes to; the pool then neither delivers nor stops (`Pool.terminate()` waits
on the same locks). No public API recovers from that, and patching its
private locks only moved the hang elsewhere (issue 9).

So each worker here has a socket pair of its own and shares nothing with the
others. The parent never blocks on one worker: its ends are non-blocking and
framed here, so a dead worker is EOF on its own pipe, a stopped or stuck one
is a task past its deadline (then SIGKILL), and either costs only the task it
was running; the rest of its chunk runs again on another worker. Stopping a
pool is SIGKILL and a bounded join: there is no lock a dead process can hold.

Tasks go out in chunks, two held per worker so the next is there when one
ends. Each worker names the task it runs, and since when, in a small shared
slot of its own (no lock: only it writes), so a death or an overrun is
charged to that task alone while answers travel in batches (one pickled list
per chunk, or per 20 ms). Results are yielded in input order: a parallel run
is the sequential run, only faster.
One warm pool per server process and start method, created on first use and
reused across batches (its workers keep their database connection).
"""
from __future__ import annotations

import atexit
import collections
import logging
import multiprocessing as mp
import os
import pickle
import selectors
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

# Signals a host process (gunicorn's worker) may have taken over; a forked
# worker must answer them the default way, or it cannot be stopped by them.
_RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTTIN", "SIGTTOU")
_HEADER = struct.Struct("!Q")  # frame: 8-byte length, then a pickle
_READ_BYTES = 1 << 20
_PARENT_CHECK_SECONDS = 1.0  # an idle worker whose parent died exits within this
_START_TIMEOUT_SECONDS = 60.0  # a worker not ready after this is killed (imports, JIT cache load)
_JOIN_SECONDS = 2.0
_CHUNKS_AHEAD = 2  # chunks a worker holds: the one it runs and the next
_FLUSH_SECONDS = 0.02  # a worker sends what it has answered at least this often
_IDLE = -1.0
_STOP_CHECK_SECONDS = 0.5  # how often busy workers are looked at for a stop (SIGSTOP)
_MAX_START_FAILURES = 20  # workers dying before they are ready, in a row: something is broken, stop trying


@dataclass(frozen=True)
class TaskFailure:
    """A task that produced no result: its worker died ("worker_lost") or ran too long ("timeout")."""

    code: str
    message: str


LOST = "the worker process running this backtest died (killed, crashed or out of memory)"
STOPPED = "the worker process running this backtest was stopped (SIGSTOP); it was killed"


def pool_size(n_tasks: int, max_processes: int = 8) -> int:
    """min(os.cpu_count(), tasks, max_processes), never below 1 (DESIGN.md's rule)."""
    return max(1, min(os.cpu_count() or 1, n_tasks, max_processes))


# ---- the worker process ------------------------------------------------------------------

def _worker_main(conn: Connection, slot: Any, initializer: Callable[[], Any] | None) -> None:
    """A worker's life: default signals, the initializer, then chunks until EOF or the parent is gone.

    The parent is whoever started us (our process, or the forkserver it
    runs); once we are handed to another parent, ours is gone.
    """
    parent_pid = os.getppid()
    _die_with_parent(parent_pid)
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    fd = conn.fileno()
    os.set_blocking(fd, True)
    try:
        if initializer is not None:
            initializer()
        _send_blocking(fd, ("ready", -1, None))
        while True:
            message = _recv_blocking(fd, parent_pid)
            if message is None or message[0] != "chunk":
                return
            _, func, before_chunk, items = message
            _run_chunk(fd, slot, func, before_chunk, items)
    except (BrokenPipeError, ConnectionResetError):  # the parent went away
        return


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us when our parent dies (PR_SET_PDEATHSIG).

    An idle worker also notices a dead parent by itself, but a worker that is
    stopped (SIGSTOP) or stuck when its server process is killed cannot; this
    one line keeps it from living on as an orphan holding a connection. The
    kernel ties it to the thread that started us: pools are started from
    threads that live as long as their process (a server's request threads,
    the main thread); a worker that outlives its thread anyway is killed and
    replaced before its next task, which costs time, never a result.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent check in _recv_blocking still holds
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def _run_chunk(fd: int, slot: Any, func: Callable[..., Any], before_chunk: Callable[[list[tuple]], Any] | None,
               items: list[tuple[int, tuple]]) -> None:
    """Run a chunk's tasks, each named in this worker's slot while it runs; answer in batches.

    The slot (task index, start time) tells the parent which task a death or
    an overrun belongs to, so answers need not go one by one: they go
    together at the chunk's end, or every _FLUSH_SECONDS, pickled as one list
    (one message per task cost ~10 % of a daily batch in pickling alone).
    before_chunk (given every task's arguments) may prepare the chunk, e.g.
    read its data in one query; a failure there is logged, never fatal.
    """
    if before_chunk is not None:
        try:
            before_chunk([args for _, args in items])
        except Exception:
            log.warning("chunk preparation failed; tasks run on their own", exc_info=True)
    answers: list[tuple] = []
    flushed = time.monotonic()
    for index, args in items:
        slot[1] = time.monotonic()
        slot[0] = index
        try:
            answers.append(("ok", index, func(*args)))
        except Exception as exc:  # the caller re-raises it
            answers.append(("raise", index, exc))
        if time.monotonic() - flushed > _FLUSH_SECONDS:
            _send_blocking(fd, ("answers", -1, answers))
            answers, flushed = [], time.monotonic()
    if answers:
        _send_blocking(fd, ("answers", -1, answers))
    slot[0] = _IDLE


def _send_blocking(fd: int, message: tuple) -> None:
    try:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception: say so instead
        first = message[2][0][1] if message[0] == "answers" and message[2] else message[1]
        failure = RuntimeError(f"result could not be pickled: {exc!r}")
        payload = pickle.dumps(("answers", -1, [("raise", first, failure)]))
    header, body = _HEADER.pack(len(payload)), memoryview(payload)
    sent = os.writev(fd, [header, body])  # no copy of a large payload to prepend its length
    if sent < len(header):
        header, sent = header[sent:], 0
        while header:
            header = header[os.write(fd, header):]
    body = body[max(0, sent - _HEADER.size):] if sent else body
    while body:
        body = body[os.write(fd, body):]


def _recv_blocking(fd: int, parent_pid: int) -> tuple | None:
    """The next message from the parent; None at EOF or once the parent has died (no orphans)."""
    import select

    while not select.select([fd], [], [], _PARENT_CHECK_SECONDS)[0]:
        if os.getppid() != parent_pid:
            return None
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        chunk = os.read(fd, min(size - len(buf), _READ_BYTES))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


# ---- the parent's view of one worker -----------------------------------------------------

@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection  # the parent's end; owns fd
    slot: Any  # RawArray (task index or -1, its start on the monotonic clock), written by the worker alone
    ready: bool = False
    started: float = field(default_factory=time.monotonic)
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    tasks: collections.deque = field(default_factory=collections.deque)  # sent, not yet answered, in order
    chunk_ends: collections.deque = field(default_factory=collections.deque)  # last task of each chunk sent
    since: float = 0.0  # when the task now running began: chunk sent, or the previous answer
    stopped: bool = False  # stop() was called: never handed a task again, whether or not it is gone yet
    # the thread that started it: when that thread ends the kernel kills the worker (PR_SET_PDEATHSIG, see
    # _die_with_parent), maybe a moment later, so from then on it is doomed and is not handed a task
    starter: threading.Thread | None = None

    @property
    def fd(self) -> int:
        return self.conn.fileno()

    def queue(self, message: tuple) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.outbox += _HEADER.pack(len(payload)) + payload

    def flush(self) -> None:
        """Write what the socket takes now, never waiting (a stopped worker must not stop us)."""
        try:
            while self.outbox:
                sent = os.write(self.fd, self.outbox[:_READ_BYTES])
                del self.outbox[:sent]
        except BlockingIOError:
            pass
        except OSError:  # the worker is gone; reading its end tells (EOF) and its tasks are charged then
            self.outbox.clear()

    def receive(self) -> tuple[list[tuple], bool]:
        """(every whole message that has arrived, whether the worker's end is closed: it died).

        Messages read before the end are kept: a worker that answered and
        then died still delivered that answer.
        """
        closed = False
        try:
            while True:
                chunk = os.read(self.fd, _READ_BYTES)
                if not chunk:
                    closed = True
                    break
                self.inbox += chunk
        except BlockingIOError:
            pass
        except OSError:  # ECONNRESET and friends: the worker is gone
            closed = True
        messages = []
        while len(self.inbox) >= _HEADER.size:
            end = _HEADER.size + _HEADER.unpack_from(self.inbox)[0]
            if len(self.inbox) < end:
                break
            messages.append(pickle.loads(memoryview(self.inbox)[_HEADER.size:end]))
            del self.inbox[:end]
        return messages, closed

    def stop(self) -> None:
        """SIGKILL and a bounded join: nothing here can wait on a lock or on the worker itself.

        A worker once stopped is never used again, even if the join ran out before it was gone (a loaded
        machine can take seconds to tear a process down): it is still running then, but it is dying."""
        self.stopped = True
        if self.process.exitcode is None:
            try:
                self.process.kill()
            except (ProcessLookupError, AttributeError):
                pass
        self.process.join(_JOIN_SECONDS)
        try:
            self.conn.close()
        except OSError:
            pass

    def running(self) -> tuple[int | None, float]:
        """(the task the worker says it runs, or None between tasks; since when, else since its chunk came)."""
        index = int(self.slot[0])
        if index >= 0 and index in self.tasks:
            return index, max(self.slot[1], self.since)
        return None, self.since

    def usable(self) -> bool:
        """Alive, not stopped (SIGSTOP), not killed by us and not doomed (its starting thread is gone): a
        worker that cannot answer, or soon will not, is replaced before use.

        A tracing stop (`t`: a debugger or py-spy sampling it) is not a fault.
        """
        return not self.stopped and (self.starter is None or self.starter.is_alive()) and \
            self.process.exitcode is None and _process_state(self.process.pid) not in (b"T", b"Z", b"X", b"")


def _process_state(pid: int | None) -> bytes:
    """The one-letter state of /proc/<pid>/stat (b"" when gone); b"R" where /proc does not exist."""
    if pid is None:
        return b""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return b""
    except OSError:
        return b"R"


# ---- the pool ------------------------------------------------------------------------------

class WorkerPool:
    """A warm set of worker processes that runs one batch at a time (callers in other threads wait)."""

    def __init__(self, start_method: str | None, initializer: Callable[[], Any] | None = None) -> None:
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # the fork server imports these once, so each new worker starts in milliseconds, not seconds; the
            # last one freezes its heap (api/services/fork_server_heap.py)
            self._ctx.set_forkserver_preload([__name__] + ([initializer.__module__] if initializer else [])
                                             + ["api.services.fork_server_heap"])
        self._initializer = initializer
        self._workers: list[_Worker] = []
        self.lock = threading.Lock()

    def pids(self) -> list[int]:
        """The live workers' pids (for tests and diagnostics)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        slot = self._ctx.RawArray("d", 2)  # this worker's alone: no lock, nothing shared with the others
        slot[0] = _IDLE
        process = self._ctx.Process(target=_worker_main, args=(child_end, slot, self._initializer),
                                    daemon=True, name="backtest-worker")
        process.start()
        child_end.close()  # the child's copy alone keeps it open: its death is EOF here
        os.set_blocking(parent_end.fileno(), False)
        return _Worker(process, parent_end, slot, starter=threading.current_thread())

    def _ready_workers(self, count: int) -> list[_Worker]:
        """`count` workers for a batch: warm ones that still answer, new ones for the rest.

        A worker found dead or stopped (SIGSTOP) since the last batch is
        replaced before it is given a task; spare warm workers stay warm.
        """
        usable = []
        for worker in self._workers:
            if worker.usable() and not worker.tasks and not worker.outbox:
                usable.append(worker)
            else:
                worker.stop()
        while len(usable) < count:
            usable.append(self._start_worker())
        self._workers = usable
        return usable[:count]

    def prestart(self, count: int, timeout: float = _START_TIMEOUT_SECONDS) -> int:
        """Start workers until `count` are warm and wait (up to timeout) for them to be ready; how many are.

        So the first batch pays no process start-up (imports, the initializer).
        Call it from a thread that lives as long as the process (see
        _die_with_parent): the main thread, or a request thread.
        """
        with self.lock:
            workers = self._ready_workers(count)
            waiting = {w.fd: w for w in workers if not w.ready}
            deadline = time.monotonic() + timeout
            with selectors.DefaultSelector() as selector:
                for fd, worker in waiting.items():
                    selector.register(fd, selectors.EVENT_READ, worker)
                while waiting and time.monotonic() < deadline:
                    for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                        worker = key.data
                        messages, closed = worker.receive()
                        if any(m[0] == "ready" for m in messages):
                            worker.ready = True
                        if worker.ready or closed:
                            selector.unregister(worker.fd)
                            del waiting[worker.fd]
                        if closed:  # died while starting: the next batch starts another
                            worker.stop()
            # a worker not ready in time is left starting: the next batch waits for it (_START_TIMEOUT_SECONDS)
            self._workers = [w for w in self._workers if w.process.exitcode is None]
            return sum(1 for w in self._workers if w.ready)

    def run(self, func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int, task_timeout: float,
            before_chunk: Callable[[list[tuple]], Any] | None = None) -> Iterator[Any]:
        """Yield func(*args) for each args tuple in input order, or a TaskFailure for a lost task.

        A task whose worker died yields TaskFailure("worker_lost"); one that
        runs longer than task_timeout seconds has its worker killed and yields
        TaskFailure("timeout"). An exception raised by func itself is re-raised
        here. However the caller leaves (done, exception, close()), no task
        of this batch is left running: busy workers are killed.
        """
        with self.lock:
            yield from _Batch(self, func, arg_tuples, processes, task_timeout, before_chunk).results()

    def close(self) -> None:
        """Stop every worker (bounded in time)."""
        for worker in self._workers:
            worker.stop()
        self._workers = []


class _Batch:
    """One run of tasks over a pool's workers: the event loop of the parent."""

    def __init__(self, pool: WorkerPool, func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                 task_timeout: float, before_chunk: Callable[[list[tuple]], Any] | None) -> None:
        self.pool, self.func, self.args, self.before_chunk = pool, func, arg_tuples, before_chunk
        self.task_timeout = task_timeout
        self.processes = max(1, processes)
        self.pending: collections.deque[list[int]] = collections.deque(
            list(range(a, b)) for a, b in guided_chunks(len(arg_tuples), self.processes))
        self.done: dict[int, Any] = {}
        self.start_failures = 0
        self.next_stop_check = time.monotonic() + _STOP_CHECK_SECONDS
        self.seen_stopped: set[_Worker] = set()

    def results(self) -> Iterator[Any]:
        n = len(self.args)
        if n == 0:
            return
        workers = self.pool._ready_workers(self.processes)
        selector = selectors.DefaultSelector()
        try:
            for worker in workers:
                selector.register(worker.fd, selectors.EVENT_READ, worker)
            next_out = 0
            while next_out < n:
                while next_out in self.done:
                    yield self.done.pop(next_out)
                    next_out += 1
                if next_out >= n:
                    break
                self._step(selector, workers)
        finally:
            selector.close()
            for worker in workers:  # a batch left early must leave no task running for the next one
                if worker.tasks or worker.outbox:
                    worker.stop()
            self.pool._workers = [w for w in self.pool._workers if w.process.exitcode is None and not w.stopped]

    def _step(self, selector: selectors.BaseSelector, workers: list[_Worker]) -> None:
        """Hand out chunks, move bytes, collect answers, and fail what died or overran."""
        now = time.monotonic()
        for worker in list(workers):
            # each worker holds up to _CHUNKS_AHEAD chunks: the next is there when it finishes one,
            # with no round trip through this loop in between
            if worker.ready and self.pending and len(worker.chunk_ends) < _CHUNKS_AHEAD:
                if not worker.tasks and not worker.usable():  # stopped or gone while idle: hand it nothing
                    self._lose(selector, workers, worker, "worker_lost", LOST)
                else:
                    self._assign(worker, self.pending.popleft(), now)
        for worker in workers:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if worker.outbox else 0)
            if selector.get_key(worker.fd).events != events:
                selector.modify(worker.fd, events, worker)
        ready = selector.select(self._wait_seconds(workers, now))
        for key, mask in ready:
            worker = key.data
            if mask & selectors.EVENT_WRITE:
                worker.flush()
            if mask & selectors.EVENT_READ:
                self._read(selector, workers, worker)
        now = time.monotonic()
        stopped = self._stopped_workers(workers, now)
        for worker in list(workers):
            if worker in stopped:
                self._lose(selector, workers, worker, "worker_lost", STOPPED)
            elif worker.tasks and now - worker.running()[1] > self.task_timeout:
                self._lose(selector, workers, worker, "timeout",
                           f"the backtest ran longer than {self.task_timeout:g} s; its worker was stopped")
            elif not worker.ready and now - worker.started > _START_TIMEOUT_SECONDS:
                self._lose(selector, workers, worker, "worker_lost", "a worker process did not start")
            elif not ready and worker.process.exitcode is not None:
                # EOF tells of a death at once; this catches one whose pipe end another process still holds
                self._read(selector, workers, worker)  # what it wrote before it died still counts
                self._lose(selector, workers, worker, "worker_lost", LOST)

    def _stopped_workers(self, workers: list[_Worker], now: float) -> set[_Worker]:
        """Busy workers found stopped (SIGSTOP) at two looks _STOP_CHECK_SECONDS apart.

        A stopped worker makes no progress; waiting for its task's timeout
        would hold the whole batch that long. Looked at twice, so a pause
        that is over at once costs nothing.
        """
        if now < self.next_stop_check:
            return set()
        self.next_stop_check = now + _STOP_CHECK_SECONDS
        seen = {w for w in workers if w.tasks and _process_state(w.process.pid) == b"T"}
        stopped, self.seen_stopped = seen & self.seen_stopped, seen
        return stopped

    def _read(self, selector: selectors.BaseSelector, workers: list[_Worker], worker: _Worker) -> None:
        if worker not in workers:
            return
        messages, closed = worker.receive()
        for message in messages:
            self._answer(worker, message)
        if closed:
            self._lose(selector, workers, worker, "worker_lost", LOST)

    def _wait_seconds(self, workers: list[_Worker], now: float) -> float:
        deadlines = [w.running()[1] + self.task_timeout for w in workers if w.tasks]
        deadlines += [w.started + _START_TIMEOUT_SECONDS for w in workers if not w.ready]
        deadlines += [self.next_stop_check] if any(w.tasks for w in workers) else []
        return max(0.0, min([now + 0.5, *deadlines]) - now)

    def _assign(self, worker: _Worker, indices: list[int], now: float) -> None:
        worker.queue(("chunk", self.func, self.before_chunk, [(i, self.args[i]) for i in indices]))
        if not worker.tasks:
            worker.since = now
        worker.tasks.extend(indices)
        worker.chunk_ends.append(indices[-1])
        worker.flush()

    def _answer(self, worker: _Worker, message: tuple) -> None:
        kind, _, value = message
        if kind == "ready":
            worker.ready = True
            self.start_failures = 0
            return
        for outcome, index, result in value:  # "answers": tasks done in order
            if worker.tasks and worker.tasks[0] == index:
                worker.tasks.popleft()
            if worker.chunk_ends and worker.chunk_ends[0] == index:
                worker.chunk_ends.popleft()
            worker.since = time.monotonic()
            if outcome == "raise":
                raise result
            self.done[index] = result

    def _lose(self, selector: selectors.BaseSelector, workers: list[_Worker], worker: _Worker, code: str,
              message: str) -> None:
        """The worker is gone (or made to go): its running task fails, the rest of its chunk runs again."""
        if worker not in workers:
            return
        selector.unregister(worker.fd)
        workers.remove(worker)
        worker.stop()
        if worker.tasks:
            running = worker.running()[0]
            charged = running if running is not None else worker.tasks[0]
            self.done[charged] = TaskFailure(code, message)
            rest = [i for i in worker.tasks if i != charged]
            if rest:  # answered but unsent, the rest of its chunk, the chunk it held ahead: they run elsewhere
                self.pending.appendleft(rest)
        elif not worker.ready:
            self.start_failures += 1
        if self.start_failures >= _MAX_START_FAILURES and not any(w.ready for w in workers):
            # workers die before they can take a task: report the rest instead of trying for ever
            for chunk in self.pending:
                for index in chunk:
                    self.done[index] = TaskFailure("worker_lost", "worker processes could not be started")
            self.pending.clear()
            if not workers:
                return
        if self.pending or any(w.tasks for w in workers):
            replacement = self.pool._start_worker()
            self.pool._workers.append(replacement)
            workers.append(replacement)
            selector.register(replacement.fd, selectors.EVENT_READ, replacement)
        self.pool._workers = [w for w in self.pool._workers if w is not worker]


def guided_chunks(n: int, workers: int, max_size: int = 32) -> list[tuple[int, int]]:
    """(start, stop) ranges that shrink toward the end: big chunks first keep IPC low,
    single tasks last keep the workers finishing together (guided self-scheduling)."""
    ranges, start = [], 0
    while start < n:
        size = max(1, min(max_size, (n - start) // (workers * 3)))
        ranges.append((start, start + size))
        start += size
    return ranges


# ---- one warm pool per server process ------------------------------------------------------

_POOLS: dict[tuple[int, str | None], WorkerPool] = {}
_LOCK = threading.Lock()


def warm_pool(start_method: str | None, initializer: Callable[[], Any] | None = None) -> WorkerPool:
    """This process's pool for start_method, created on first use.

    Keyed by pid, so a forked child (a gunicorn worker) never uses a pool its
    parent created.
    """
    key = (os.getpid(), start_method)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = WorkerPool(start_method, initializer)
        return pool


def run_in_pool(func: Callable[..., Any], arg_tuples: Sequence[tuple], processes: int,
                start_method: str | None = None, initializer: Callable[[], Any] | None = None,
                task_timeout: float = 60.0,
                before_chunk: Callable[[list[tuple]], Any] | None = None) -> Iterator[Any]:
    """Yield func(*args) for every args tuple, in input order, over `processes` warm workers.

    See WorkerPool.run for what a lost task yields. Close the iterator (or
    exhaust it) to end the batch; closing it early stops its busy workers.
    """
    return warm_pool(start_method, initializer).run(func, arg_tuples, processes, task_timeout, before_chunk)


def shutdown_pools() -> None:
    """Stop this process's pools (at exit, and in tests); bounded in time."""
    with _LOCK:
        mine = [k for k in _POOLS if k[0] == os.getpid()]
        pools = [_POOLS.pop(k) for k in mine]
    for pool in pools:
        # a batch still running holds the lock; stop its workers anyway after a short wait
        locked = pool.lock.acquire(timeout=5.0)
        try:
            pool.close()
        finally:
            if locked:
                pool.lock.release()


atexit.register(shutdown_pools)
