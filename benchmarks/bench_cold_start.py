"""How long `make run` takes to answer, from a fresh checkout and on a warm restart. Prints tables, asserts nothing.

Each run clones this repository (the commit given by --ref, default HEAD) into a
temporary folder, links this checkout's .venv into it (so "the venv is
installed", nothing else is: no compiled kernels in api/engine/__pycache__, no
.pyc files, an empty embedded database in a fresh PGSERVER_DIR), and starts
`.venv/bin/python -m api.serve` there on a free loopback port (the command
behind `make run`; make itself would only add its pip check). Three starts per
run, each timed from the moment the process is started:

  cold        fresh clone, no kernel cache, empty database (postgres initdb, migrate, demo data, compile)
  warm        the same clone started again: kernels cached, database filled, embedded postgres still up
  warm-pgdown the same again after `make stop-db`: postgres must start, nothing else is new

For each start: the ready line ("ready. Try: ..."), the first 200 of a GET
/api/health polled every 0.1 s from the start (when the port answers at all),
the first `POST /api/crypto/backtest/all {"strategy_id":1,"parameters":{},
"use_parallel":true}` sent as soon as the ready line appeared (answered at: its
200, since the start), its own latency, and a second identical request's
latency (the steady state). Log lines that mark phases are timed too.
Afterwards the server and the embedded postgres are stopped and the folder is
removed.

    .venv/bin/python benchmarks/bench_cold_start.py --runs 3
    .venv/bin/python benchmarks/bench_cold_start.py --runs 3 --ref engine --ref HEAD   # before/after, interleaved
    .venv/bin/python benchmarks/bench_cold_start.py --runs 1 --log /tmp/cold.log   # keep every timed log line
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = {"strategy_id": 1, "parameters": {}, "use_parallel": True}
READY = re.compile(r"ready\. Try:")
# log lines that mark a phase (first match wins), in start-up order
PHASES = [
    ("pg_up", re.compile(r"embedded PostgreSQL running")),
    ("seeded", re.compile(r"loaded \d+ synthetic demo cryptos")),
    ("kernels", re.compile(r"engine kernels (ready|compiled|loaded)")),
    ("gunicorn", re.compile(r"Starting gunicorn")),
    ("worker_up", re.compile(r"Booting worker")),
]
SCENARIOS = ("cold", "warm", "warm-pgdown")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_all(base: str, timeout: float = 300) -> int:
    req = urllib.request.Request(base + "/api/crypto/backtest/all", data=json.dumps(BODY).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


class Start:
    """One `python -m api.serve` in `checkout`, its output read and timed on a thread."""

    def __init__(self, checkout: Path, pgdir: Path, log: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NUMBA_CACHE_DIR", "PORT", "HOST")}
        env.update(PORT=str(self.port), HOST="127.0.0.1", PGSERVER_DIR=str(pgdir), PYTHONUNBUFFERED="1")
        self.events: dict[str, float] = {}
        self.ready = threading.Event()
        self.log = log
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # this start's tree is reaped by us alone meanwhile
        self.cpu0 = usage.ru_utime + usage.ru_stime
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([str(checkout / ".venv" / "bin" / "python"), "-m", "api.serve"], cwd=checkout,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._poll_health, daemon=True).start()

    def since(self) -> float:
        return time.monotonic() - self.t0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            t = self.since()
            line = raw.decode(errors="replace").rstrip()
            self.log.append(f"{t:7.2f} {line}")
            for name, pattern in PHASES:
                if name not in self.events and pattern.search(line):
                    self.events[name] = t
            if "ready" not in self.events and READY.search(line):
                self.events["ready"] = t
                self.ready.set()

    def _poll_health(self) -> None:
        while self.proc.poll() is None and self.since() < 300:
            try:
                with urllib.request.urlopen(self.base + "/api/health", timeout=60) as resp:
                    if resp.status == 200:
                        self.events["health"] = self.since()
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.1)

    def measure(self, timeout: float = 300) -> dict[str, float]:
        if not self.ready.wait(timeout):
            raise RuntimeError("no ready line within %.0f s:\n%s" % (timeout, "\n".join(self.log[-40:])))
        sent = self.since()
        status = post_all(self.base)
        answered = self.since()
        if status != 200:
            raise RuntimeError(f"first /all answered {status}")
        t = time.monotonic()
        status = post_all(self.base)
        second = time.monotonic() - t
        if status != 200:
            raise RuntimeError(f"second /all answered {status}")
        deadline = time.monotonic() + 10
        while "health" not in self.events and time.monotonic() < deadline:
            time.sleep(0.05)
        return {**self.events, "first_all": answered, "first_latency": answered - sent, "second_latency": second}

    def stop(self) -> float:
        """SIGTERM to the gunicorn master (not its group: the embedded postgres must live on), then the rest.

        Returns the CPU seconds (user + sys) that this start's process tree used, postgres aside.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime - self.cpu0


def stop_postgres(checkout: Path, pgdir: Path) -> None:
    code = ("import sys; from pathlib import Path; from api.db.embedded import stop_embedded_postgres as s; "
            "s(Path(sys.argv[1]))")
    subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", code, str(pgdir)], cwd=checkout, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_run(ref: str, log_file: Path | None) -> dict[str, dict[str, float]]:
    folder = Path(tempfile.mkdtemp(prefix="bt-coldstart-"))
    os.chmod(folder, 0o755)  # the embedded postgres runs as its own user when we are root
    checkout, pgdir = folder / "repo", folder / "pgdata"
    out: dict[str, dict[str, float]] = {}
    log: list[str] = []
    try:
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(checkout)], check=True)
        subprocess.run(["git", "-C", str(checkout), "checkout", "-q", ref], check=True)
        (checkout / ".venv").symlink_to(ROOT / ".venv")
        assert not list((checkout / "api" / "engine").glob("__pycache__/*.nb[ic]"))
        for scenario in SCENARIOS:
            if scenario == "warm-pgdown":
                stop_postgres(checkout, pgdir)
            log.append(f"---- {scenario}")
            start = Start(checkout, pgdir, log)
            try:
                out[scenario] = start.measure()
            finally:
                cpu = start.stop()
            out[scenario]["cpu_s"] = cpu
            out[scenario]["load1"] = os.getloadavg()[0]
    finally:
        stop_postgres(checkout, pgdir)
        if log_file is not None:
            with open(log_file, "a") as f:
                f.write("\n".join(log) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
    return out


COLUMNS = ["pg_up", "seeded", "kernels", "gunicorn", "worker_up", "health", "ready", "first_all", "first_latency",
           "second_latency", "cpu_s", "load1"]


def table(title: str, rows: dict[str, dict[str, float]]) -> str:
    head = "| start | " + " | ".join(COLUMNS) + " |"
    lines = [title, head, "|" + " --- |" + " ---: |" * len(COLUMNS)]
    for scenario, values in rows.items():
        cells = [f"{values[c]:.2f}" if c in values else "-" for c in COLUMNS]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref", action="append", help="commit of this repository to start (default HEAD; "
                        "uncommitted changes are not measured); given twice or more, runs alternate between them "
                        "so each sees the same machine load")
    parser.add_argument("--log", type=Path, help="append every timed output line here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run still stops its servers
    refs = [subprocess.run(["git", "-C", str(ROOT), "rev-parse", r], check=True, capture_output=True,
                           text=True).stdout.strip() for r in (args.ref or ["HEAD"])]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; seconds since the start, "
          "cpu_s: CPU seconds of the start's process tree (postgres aside), load1: load average after it")
    runs: dict[str, list] = {ref: [] for ref in refs}
    for i in range(args.runs):
        for ref in refs:
            result = one_run(ref, args.log)
            runs[ref].append(result)
            print(table(f"\nrun {i + 1}, commit {ref[:10]}", result), flush=True)
    for ref in refs:
        medians = {s: {c: statistics.median(r[s][c] for r in runs[ref]) for c in COLUMNS
                       if all(c in r[s] for r in runs[ref])} for s in SCENARIOS}
        print(table(f"\ncommit {ref[:10]}: medians of {args.runs} runs (first_all: the first /all answered, "
                    "sent at the ready line; latencies: that request's and a second one's)", medians))


if __name__ == "__main__":
    main()
