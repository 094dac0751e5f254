"""Service layer: orchestrates backtests over the persistence layer and the engine."""
from api.services.backtest_service import CryptoBacktestService

__all__ = ["CryptoBacktestService"]
