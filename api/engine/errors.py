"""Engine exceptions.

They subclass ValueError so callers that already treat bad input as a 400
keep working, while `EngineError` lets the HTTP layer catch engine problems
without swallowing unrelated ValueErrors.
"""


class EngineError(ValueError):
    """Base class for every error the engine raises on bad input data."""


class InsufficientDataError(EngineError):
    """Too few candles for the requested computation (e.g. RSI warm-up)."""


class InvalidPriceDataError(EngineError):
    """Prices are not a 1-D array of finite, strictly positive floats."""
