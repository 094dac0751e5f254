"""SYNC_MAX_BACKTESTS: a synchronous request that would run more backtests is refused before anything runs.

The service counts a request's backtests where it plans it (cryptos, settings x cryptos, windows x (settings + 1),
paths x cryptos) and asks here; a route passes the setting, a job passes None, so long work goes through
POST /api/jobs and no request outlives gunicorn's timeout.
"""
from __future__ import annotations

from api.services.errors import TooLargeForRequest


def check_request_size(backtests: int, max_backtests: int | None, kind: str, field: str = "request") -> None:
    """TooLargeForRequest (HTTP 422, its detail naming /api/jobs) when backtests > max_backtests."""
    if max_backtests is not None and backtests > max_backtests:
        raise TooLargeForRequest(
            f"this request would run {backtests:,} backtests; a synchronous request runs at most {max_backtests:,} "
            f"(SYNC_MAX_BACKTESTS). Submit it as a job instead: POST /api/jobs with {{\"kind\": \"{kind}\", "
            f"\"request\": <this body>}}, then follow GET /api/jobs/{{id}} for its progress and result",
            [{"field": field, "message": f"{backtests:,} backtests; at most {max_backtests:,} in a synchronous "
                                         f"request (SYNC_MAX_BACKTESTS): use POST /api/jobs"}])
