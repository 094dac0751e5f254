"""The dashboard: static files the app serves at `/` and `/static/` (issue 13).

No build step and no CDN: the page is plain HTML, CSS and JavaScript in
`static/`, and its one library (TradingView Lightweight Charts) is vendored
under `static/vendor/` with its licence and notice. The page talks only to the
API (strategies, cryptos, jobs, batches, candles, a single backtest), so it holds
no business logic; its Content-Security-Policy lets it load nothing from elsewhere.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"
# the chart library sets style attributes from script, hence 'unsafe-inline' for styles only
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def register_web(app: Flask) -> Blueprint:
    """Mount the page at `/` and its files at `/static/`."""
    web = Blueprint("web", __name__, static_folder=str(STATIC), static_url_path="/static")

    @web.get("/")
    def index() -> Response:
        return send_from_directory(STATIC, "index.html")

    @web.after_request
    def guarded(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.register_blueprint(web)
    return web
