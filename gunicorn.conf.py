"""gunicorn settings (env: PORT, HOST, WEB_CONCURRENCY, GUNICORN_TIMEOUT)."""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5001')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# a 211-crypto batch takes seconds at most; leave room for large custom universes
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
accesslog = "-"
errorlog = "-"


def when_ready(server):  # noqa: D103 - gunicorn hook
    port = os.environ.get("PORT", "5001")
    server.log.info(
        "ready. Try:\n  curl -s -X POST http://127.0.0.1:%s/api/crypto/backtest/all "
        "-H 'Content-Type: application/json' "
        "-d '{\"strategy_id\": 1, \"parameters\": {}, \"use_parallel\": true}'",
        port,
    )
