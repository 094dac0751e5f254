"""gunicorn settings (env: PORT, HOST, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_TIMEOUT).

Threaded workers (gthread): a client that sends its body slowly holds one
thread, not a whole server process, so /api/health and other requests are
still served; REQUEST_BODY_TIMEOUT_SECONDS bounds how long it holds it.
"""
import gc
import os
import shutil
import tempfile

from api.config import Settings

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5001')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
# The master loads the app once (imports, engine kernels from numba's cache) and forks the workers from it:
# a worker starts in milliseconds, also one replacing a killed worker, and they share those pages. The app
# opens no connection and starts no thread while it is built, so nothing is shared that must not be.
preload_app = True
threads = Settings.from_env().gunicorn_threads  # the app sizes its connection pool from the same setting
# gthread's main loop reports to the master while requests run in threads: this
# restarts a worker whose loop is stuck, it does not cut a long request short
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
# gunicorn's control socket is one file per user ($HOME/.gunicorn/gunicorn.ctl) shared by every gunicorn
# on the host and left behind by a killed master; the service needs none of its commands
control_socket_disable = True


# The ready line: printed once every worker has loaded the app (kernels from numba's cache, see api/serve.py)
# and started its warm pool, and the database answered, so a request sent then is answered at full speed.
# Each worker marks itself done in a folder the master made before forking them; the last one prints it.
_ready_dir = None


def on_starting(server):  # noqa: D103 - gunicorn hook, in the master before any worker is forked
    global _ready_dir
    _ready_dir = tempfile.mkdtemp(prefix="gunicorn-ready-")


def pre_fork(server, worker):  # noqa: D103 - gunicorn hook, in the master before each worker is forked
    # the preloaded app's objects are shared with every worker: keep the workers' collections off them
    # (a collection writes to each object it walks, which copies the page; see api.app.warm_server_process)
    gc.freeze()


def post_worker_init(worker):  # noqa: D103 - gunicorn hook, in each worker's main thread once it loaded the app
    from api.app import warm_server_process

    state = warm_server_process(worker.wsgi)
    if not state["database_ready"]:
        worker.log.warning("worker %s: the database is not ready (%s); GET /api/ready tells when it is",
                           worker.pid, state["database"])
        return
    if _ready_dir is None:
        return
    try:
        open(os.path.join(_ready_dir, f"worker-{worker.pid}"), "x").close()
        done = sum(1 for name in os.listdir(_ready_dir) if name.startswith("worker-"))
        if done < worker.cfg.workers:
            return
        os.close(os.open(os.path.join(_ready_dir, "printed"), os.O_CREAT | os.O_EXCL))  # one worker prints it
    except OSError:  # printed already (a later worker, e.g. one replacing a killed one), or the folder is gone
        return
    if state["executor"] == "dask":
        worker.log.info("%d workers have loaded the app; parallel batches run on the Dask cluster at %s",
                        worker.cfg.workers, state["dask_scheduler_address"])
    else:
        worker.log.info("%d workers have loaded the app, each with a warm pool of %d processes",
                        worker.cfg.workers, state["pool_processes"])
    port = os.environ.get("PORT", "5001")
    worker.log.info(
        "ready. Try:\n  curl -s -X POST http://127.0.0.1:%s/api/crypto/backtest/all "
        "-H 'Content-Type: application/json' "
        "-d '{\"strategy_id\": 1, \"parameters\": {}, \"use_parallel\": true}'",
        port,
    )


def on_exit(server):  # noqa: D103 - gunicorn hook
    if _ready_dir is not None:
        shutil.rmtree(_ready_dir, ignore_errors=True)
