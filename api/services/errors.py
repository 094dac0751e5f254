"""Errors the service raises for the caller's mistakes; the HTTP layer maps them to statuses."""
from __future__ import annotations


class ServiceError(Exception):
    """Base of errors that describe bad input rather than a fault of ours."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class ValidationFailed(ServiceError):
    """Input was understood but some fields are wrong; `errors` names each field and why."""


class NotFound(ServiceError):
    """A strategy or cryptocurrency the request names does not exist."""


class TooLargeForRequest(ServiceError):
    """A synchronous request would run more backtests than SYNC_MAX_BACKTESTS (HTTP 422): it must be a job, so
    that no request outlives the server's timeout. Nothing was run."""


class Busy(ServiceError):
    """The service is at its bound of concurrent batches; the caller should retry after `retry_after` s."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Conflict(ServiceError):
    """Another request is changing the same thing and did not finish within the lock timeout (HTTP 409).

    Nothing was stored; the caller may retry after `retry_after` seconds.
    """

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, errors)
        self.retry_after = retry_after


class ExecutorUnavailable(ServiceError):
    """EXECUTOR=dask and the Dask scheduler cannot be reached, has no worker, or went away mid-batch (HTTP 503
    + Retry-After): nothing was stored; retry later."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail, [{"field": "executor", "message": detail}])
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceError):
    """The database failed during the work (connection lost, timeout): nothing was stored; retry later.

    Raised for the whole batch, never charged to one crypto: a lost connection
    says nothing about that crypto's data (HTTP 503 + Retry-After).
    """

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
