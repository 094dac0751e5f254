"""`make run`'s job runner: one `flask --app api jobs-worker` process beside gunicorn, started again if it dies.

`api/serve.py` starts it beside gunicorn (unless JOBS_WORKER=0) and stops it
after gunicorn. Not from gunicorn's master: the master reaps every child it
has as if it were a web worker, which left a restart hanging. The runner
is a process of its own, not a thread in a web worker: a batch it runs holds
no request thread, and a crash of either leaves the other serving. A runner
that keeps dying is started again after a growing pause (up to 30 s), and a
job it held is taken over once its heartbeat is JOB_HEARTBEAT_TIMEOUT_SECONDS old.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from api.config import REPO_ROOT

log = logging.getLogger(__name__)


class JobRunnerSupervisor(threading.Thread):
    """Keeps one job runner process alive until stop()."""

    def __init__(self, command: list[str] | None = None) -> None:
        super().__init__(daemon=True, name="job-runner-supervisor")
        flask = Path(sys.executable).parent / "flask"
        self.command = command or [str(flask), "--app", "api", "jobs-worker"]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        pause = 1.0
        while not self._halt.is_set():
            with self._lock:
                if self._halt.is_set():
                    return
                self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=os.environ.copy())
                self.starts += 1
            log.info("job runner started (pid %d)", self.process.pid)
            code = self.process.wait()
            if self._halt.is_set():
                return
            log.warning("job runner (pid %d) exited with %s; starting another in %.0f s", self.process.pid, code,
                        pause)
            self._halt.wait(pause)
            pause = min(pause * 2, 30.0)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the runner (SIGTERM: it finishes nothing, a running job of it is taken over later) and wait."""
        with self._lock:
            self._halt.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.join(timeout)
