"""gunicorn settings (env: PORT, HOST, WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_TIMEOUT).

Threaded workers (gthread): a client that sends its body slowly holds one
thread, not a whole server process, so /api/health and other requests are
still served; REQUEST_BODY_TIMEOUT_SECONDS bounds how long it holds it.
"""
import os

from api.config import Settings

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5001')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
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


def when_ready(server):  # noqa: D103 - gunicorn hook
    port = os.environ.get("PORT", "5001")
    server.log.info(
        "ready. Try:\n  curl -s -X POST http://127.0.0.1:%s/api/crypto/backtest/all "
        "-H 'Content-Type: application/json' "
        "-d '{\"strategy_id\": 1, \"parameters\": {}, \"use_parallel\": true}'",
        port,
    )
