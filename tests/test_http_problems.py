"""Bodies that cannot be read or arrive too slowly answer problem+json naming the body.

Through the Flask client, with the `wsgi.input` a server hands over made to
misbehave the way gunicorn's does.
"""
from __future__ import annotations

import time

import pytest
from gunicorn.http.errors import InvalidChunkSize, NoMoreData

from api import create_app
from api.db import repository as repo

BATCH = "/api/crypto/backtest/all"
PRICES = "/api/crypto/prices"


def assert_problem(resp, status: int, field: str) -> dict:
    """The response is problem+json of `status` whose `errors` name `field`; returns the body."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert {"type", "title", "status", "detail", "errors"} <= set(problem)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["errors"] and all(set(e) == {"field", "message"} and e["message"] for e in problem["errors"])
    assert field in {e["field"] for e in problem["errors"]}
    return problem


class MisbehavingInput:
    """A `wsgi.input` that gives `data`, then raises `error` (as gunicorn's body reader does), slowly if asked."""

    def __init__(self, data: bytes = b"", error: Exception | None = None, delay: float = 0.0) -> None:
        self.data, self.error, self.delay = data, error, delay

    def read(self, size: int = -1) -> bytes:
        time.sleep(self.delay)
        if not self.data and self.error is not None:
            raise self.error
        size = len(self.data) if size is None or size < 0 else size
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def _post_raw(client, path: str, stream: MisbehavingInput, content_type: str, length: int | None):
    overrides = {"wsgi.input": stream}
    if length is None:
        overrides |= {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}
    else:
        overrides["CONTENT_LENGTH"] = str(length)
    return client.post(path, content_type=content_type, environ_overrides=overrides)


@pytest.mark.parametrize("path, content_type", [(BATCH, "application/json"),
                                                (PRICES, "multipart/form-data; boundary=b")])
@pytest.mark.parametrize("data, error, length", [
    (b"", InvalidChunkSize(b"ZZ"), None),      # chunk size `ZZ`: not hex
    (b'{"strategy_id"', NoMoreData(), None),   # client gone mid-chunk
    (b'{"strategy_id"', None, 500),            # shorter than its Content-Length
], ids=["bad-chunk-size", "no-more-data", "short"])
def test_unreadable_body_is_400_naming_the_body(client, demo_db, path, content_type, data, error, length) -> None:
    resp = _post_raw(client, path, MisbehavingInput(data, error), content_type, length)
    assert_problem(resp, 400, "body")
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0 and repo.count_prices(conn) == 24 * 400


def test_body_slower_than_the_deadline_is_408(settings, demo_db) -> None:
    client = create_app(settings, request_body_timeout_s=1).test_client()
    slow = MisbehavingInput(b'{"strategy_id": 1, "parameters": {}}', delay=0.6)
    problem = assert_problem(_post_raw(client, BATCH, slow, "application/json", None), 408, "body")
    assert "REQUEST_BODY_TIMEOUT_SECONDS = 1" in problem["errors"][0]["message"]
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0
