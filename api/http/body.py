"""Every route reads its request body through `BodyGuard`, a WSGI middleware around `wsgi.input`.

Failures of the body itself otherwise surface deep inside werkzeug, far from
any route: gunicorn raises `InvalidChunkSize` (a plain `Exception`) for a
chunk size like `ZZ` and `NoMoreData` (an `OSError`) when the client stops
mid-body, and a client that trickles its body holds a server thread for as
long as it likes. The guard turns the first into `BodyUnreadable` (400) and
enforces a deadline for the whole body, `BodyTimeout` (408); `problem_for`
maps both, like every other error. Neither is an `OSError` or `ValueError` on
purpose: werkzeug swallows those (an empty form) or rewrites them (a bare
"client disconnected").
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyUnreadable(Exception):
    """The request body could not be read: broken chunked framing, cut short, connection reset."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BodyTimeout(Exception):
    """The request body was not complete within the deadline (REQUEST_BODY_TIMEOUT_SECONDS)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body was not complete within {seconds:g} s")
        self.seconds = seconds


class BodyGuard:
    """WSGI middleware: the request body's read errors and deadline become BodyUnreadable / BodyTimeout."""

    def __init__(self, app: WSGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _GuardedInput(environ["wsgi.input"], _content_length(environ), self.timeout_s,
                             _server_socket(environ))
        environ["wsgi.input"] = body
        try:
            return self.app(environ, start_response)
        finally:
            body.finish()


def _content_length(environ: dict[str, Any]) -> int | None:
    """The declared length; None when chunked or not a number (the server and werkzeug judge those)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return None


def _server_socket(environ: dict[str, Any]) -> socket.socket | None:
    """gunicorn's client socket, the one server internal used here.

    A read blocked in the server's parser returns only when bytes arrive, so
    no check between reads can stop a client sending a byte every second.
    WSGI has no public way to bound a blocked read; shutting the socket's read
    side (what `_GuardedInput` does at the deadline) wakes it. Under another
    server the deadline is still checked after every read.
    """
    sock = environ.get("gunicorn.socket")
    return sock if isinstance(sock, socket.socket) else None


class _GuardedInput:
    """`wsgi.input` whose failures are BodyUnreadable and whose slowness past the deadline is BodyTimeout."""

    def __init__(self, stream: Any, expected: int | None, timeout_s: float, sock: socket.socket | None) -> None:
        self._stream = stream
        self._remaining = expected  # bytes still due by Content-Length; None: read to the end (chunked)
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s
        self._sock = sock
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._done = expected == 0
        self._expired = False

    def read(self, *args: Any) -> bytes:
        return self._guarded(self._stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._guarded(self._stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._guarded(self._stream.readlines, *args)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def finish(self) -> None:
        """The request is over: stop the deadline timer (the body needs no guarding any more)."""
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        if self._done or (args and args[0] == 0):
            return read(*args)
        self._arm()
        try:
            data = read(*args)
        except Exception as exc:  # whatever the server raised, the body is unreadable
            if self._timed_out():
                raise BodyTimeout(self._timeout_s) from exc
            raise BodyUnreadable(f"{type(exc).__name__}: {exc}"[:200]) from exc
        if self._timed_out():
            raise BodyTimeout(self._timeout_s)
        self._account(sum(map(len, data)) if isinstance(data, list) else len(data))
        return data

    def _account(self, received: int) -> None:
        if self._remaining is None:
            if received == 0:
                self.finish()
            return
        if received == 0:
            raise BodyUnreadable(f"the body ended {self._remaining} bytes short of its Content-Length")
        self._remaining -= received
        if self._remaining <= 0:
            self.finish()

    def _arm(self) -> None:
        """Start the deadline timer at the first read (a body never read costs no thread)."""
        if self._timer is None and self._sock is not None:
            self._timer = threading.Timer(max(0.0, self._deadline - time.monotonic()), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._expired = True
            try:
                self._sock.shutdown(socket.SHUT_RD)  # a blocked recv returns b"" at once; answering still works
            except OSError:
                pass

    def _timed_out(self) -> bool:
        return self._expired or time.monotonic() >= self._deadline
