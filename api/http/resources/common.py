"""What every resource needs: the service of the current app, and the settings a route passes it."""
from __future__ import annotations

from flask import current_app

from api.services import CryptoBacktestService


def backtest_service() -> CryptoBacktestService:
    """The app's CryptoBacktestService (built once in the app factory)."""
    return current_app.extensions["backtest_service"]


def sync_max_backtests() -> int:
    """SYNC_MAX_BACKTESTS: the most backtests a synchronous route runs (more is work for POST /api/jobs)."""
    return current_app.config["SETTINGS"].sync_max_backtests
