"""`make run`: database up (embedded when no DATABASE_URL), migrated, demo data if empty, kernels compiled, then gunicorn.

Everything before gunicorn happens once here, so gunicorn only ever attaches
to a ready database and loads the engine's kernels from numba's disk cache:
the kernels are compiled in a subprocess started first thing, on the other
core while the database starts, migrates and loads its demo data, and waited
for before gunicorn is exec'd. gunicorn's master then loads the app (and the
kernels, from the cache) once and forks its workers (gunicorn.conf.py), which
start their warm pools; the ready line comes once they all have. Before, every
gunicorn worker and every pool worker of a fresh checkout compiled the kernels
at once (see jit.py).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time

from api.config import REPO_ROOT, Settings

log = logging.getLogger("api.serve")

# run in a subprocess: compile (or load) every kernel, writing numba's disk cache; print seconds and cache state
_COMPILE = ("import time; t = time.perf_counter(); from api.engine import warm_up; from api.engine.numeric import CACHE; "
            "warm_up(); print(f'{time.perf_counter() - t:.2f} {int(CACHE)}')")


def start_kernel_compile() -> tuple[subprocess.Popen, float]:
    """Start compiling the engine's kernels into numba's disk cache in a subprocess (same environment)."""
    proc = subprocess.Popen([sys.executable, "-c", _COMPILE], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    return proc, time.monotonic()


def wait_kernel_compile(proc: subprocess.Popen, started: float) -> None:
    """Wait for the compile subprocess; a failure is logged, never fatal (the workers then compile themselves)."""
    out, _ = proc.communicate()
    waited = time.monotonic() - started
    try:
        seconds, cached = out.split()
    except ValueError:
        log.warning("compiling the engine's kernels failed (exit %s); each server process compiles its own",
                    proc.returncode)
        return
    if cached == "1":
        log.info("engine kernels ready in %s s (numba's disk cache now serves every process; %.1f s since start)",
                 seconds, waited)
    else:  # numeric.py warned already: no writable cache, so every process compiles (seconds each)
        log.warning("engine kernels compiled in %s s but numba has no writable disk cache: gunicorn's master "
                    "compiles them again (its forked workers share them), and so does every pool worker under "
                    "MP_START_METHOD=spawn/forkserver; set NUMBA_CACHE_DIR", seconds)


def prepare_database(settings: Settings) -> str:
    """Start/attach, migrate, load demo data when the database has none; return the URL."""
    from api.db.connection import db_config_for, make_engine, resolve_database_url
    from api.services.catalog import upgrade_database
    from api.services.demo_loader import seed_demo

    url = resolve_database_url(settings)
    engine = make_engine(db_config_for(url, settings), pool_size=1)
    try:
        upgrade_database(engine)
        out = seed_demo(engine, settings.demo_cryptos, settings.demo_candles, settings.demo_seed,
                        only_if_empty=True, progress=True)
        if out["loaded"]:
            log.info("loaded %d synthetic demo cryptos (%d candles)", out["cryptos"], out["rows"])
    finally:
        engine.dispose()
    return url


def main() -> None:
    """Compile the kernels while the database is prepared, then replace this process with gunicorn."""
    try:
        settings = Settings.from_env()  # a bad setting stops here, in one line, before anything starts
    except ValueError as exc:
        raise SystemExit(f"cannot start: {exc}") from None
    compiling = start_kernel_compile()  # first: it overlaps everything below on the other core
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    try:
        url = prepare_database(settings)
    except BaseException:
        compiling[0].kill()
        compiling[0].wait()
        raise
    wait_kernel_compile(*compiling)
    os.environ["DATABASE_URL"] = url
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    args = [gunicorn, "-c", str(REPO_ROOT / "gunicorn.conf.py"), "api:create_app()"]
    os.chdir(REPO_ROOT)
    if os.environ.get("JOBS_WORKER", "1") == "0":
        os.execv(gunicorn, args)
    sys.exit(serve_with_job_runner(args))


def serve_with_job_runner(gunicorn_args: list[str]) -> int:
    """gunicorn and a job runner side by side (JOBS_WORKER=0: gunicorn alone): the runner is started again if it
    dies; SIGTERM or SIGINT stops gunicorn, then the runner; returns gunicorn's exit code.

    This process stays their parent (not gunicorn's master, which reaps every child it has as its own worker)."""
    from api.job_runner_supervisor import JobRunnerSupervisor

    server = subprocess.Popen(gunicorn_args)
    runner = JobRunnerSupervisor()

    def stop(signum: int, _frame: object) -> None:
        if server.poll() is None:
            server.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    runner.start()
    try:
        return server.wait()
    finally:
        runner.stop()


if __name__ == "__main__":
    main()
