"""gunicorn on a loopback port for end-to-end tests, and raw-socket clients that misbehave on purpose.

Everything here cleans up after itself: gunicorn's process group is stopped
and its log lives in a temporary folder that is removed; sockets are closed.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_json(url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    """(status, parsed JSON body) of a GET, or of a POST when `body` is given."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextlib.contextmanager
def running_gunicorn(db_url: str, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn (gunicorn.conf.py, 2 workers) on a free loopback port; yields (base URL, process).

    `env` overrides the environment (e.g. REQUEST_BODY_TIMEOUT_SECONDS="2").
    """
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           **env}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with tempfile.TemporaryDirectory(prefix="bt-gunicorn-") as folder:
        log_path = Path(folder) / "gunicorn.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "api:create_app()"], cwd=ROOT, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_until_healthy(f"http://127.0.0.1:{port}", proc, log_path)
                yield f"http://127.0.0.1:{port}", proc
            except BaseException:
                sys.stderr.write("gunicorn log:\n" + log_path.read_text(errors="replace")[-20_000:])
                raise
            finally:
                _stop(proc)


def _wait_until_healthy(base: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if request_json(base + "/api/health", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("gunicorn did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_serve(db_url: str, **env: str) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """`make run`'s server (`python -m api.serve`: gunicorn and a job runner) on a free loopback port, ready;
    yields (base URL, its process, its log). Stopped (its whole group) and its folder removed afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
           **env}
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bt-serve-") as folder, open(Path(folder) / "serve.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "api.serve"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_until_ready(base, server)
            yield base, server, Path(folder) / "serve.log"
        except BaseException:
            sys.stderr.write((Path(folder) / "serve.log").read_text(errors="replace")[-10_000:])
            raise
        finally:
            stop_group(server)


def stop_group(proc: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM a process group (gunicorn removes its ready folder on a clean exit), then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(seconds)
    kill_group(proc)


def _wait_until_ready(base: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if request_json(base + "/api/ready", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not become ready (exit code {proc.poll()})")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process started with start_new_session and its whole group, if it still runs; reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def http_head(method: str, path: str, content_type: str, framing: str) -> bytes:
    """A request line and headers; `framing` is e.g. "Content-Length: 10" or "Transfer-Encoding: chunked"."""
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\n"
            "Connection: close\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one response, read until the server closes."""
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def raw_exchange(base: str, data: bytes, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Send `data` as it is on a fresh connection and read the one response."""
    with socket.create_connection(("127.0.0.1", port_of(base)), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


class TrickledBody:
    """A request whose body goes out one byte every `interval` seconds, on its own thread and socket.

    Used as a context manager: the socket stays open until the block ends.
    `sent` counts body bytes sent; `finished` is set once the whole body went out.
    """

    def __init__(self, base: str, head: bytes, body: bytes, interval: float = 0.5, timeout: float = 60) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port_of(base)), timeout=timeout)
        self.head, self.body, self.interval = head, body, interval
        self.sent = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TrickledBody":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()

    def _run(self) -> None:
        try:
            self.sock.sendall(self.head)
            for byte in self.body:
                if self._stop.is_set():
                    return
                self.sock.sendall(bytes([byte]))
                self.sent += 1
                self._stop.wait(self.interval)
            self.finished.set()
        except OSError:  # the server answered and closed (a 408): nothing more to send
            pass

    def wait_sent(self, n: int, timeout: float = 30) -> None:
        """Block until at least `n` body bytes went out (the server is reading this body by then)."""
        deadline = time.monotonic() + timeout
        while self.sent < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.sent} of {n} bytes sent")
            time.sleep(0.05)
