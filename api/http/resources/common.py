"""What every resource needs: the service of the current app."""
from __future__ import annotations

from flask import current_app

from api.services import CryptoBacktestService


def backtest_service() -> CryptoBacktestService:
    """The app's CryptoBacktestService (built once in the app factory)."""
    return current_app.extensions["backtest_service"]
