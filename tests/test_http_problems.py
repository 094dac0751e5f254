"""Every error answer has one shape: problem+json {type, title, status, detail, errors: [{field, message}]}.

Through the Flask client: unknown URLs, wrong methods, bodies too large,
unreadable or too slow (the `wsgi.input` a server hands over, made to
misbehave the way gunicorn's does), a busy service and a database that is
not ready.
"""
from __future__ import annotations

import io
import time

import pytest
from gunicorn.http.errors import InvalidChunkSize, NoMoreData

from api import create_app
from api.config import Settings
from api.db import repository as repo
from tests.pg import fresh_database

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


def test_unknown_url_is_404_naming_the_path(client) -> None:
    problem = assert_problem(client.get("/api/nope"), 404, "path")
    assert "/api/nope" in problem["detail"] and "/api/nope" in problem["errors"][0]["message"]


def test_wrong_method_is_405_with_allow(client) -> None:
    resp = client.get(BATCH)
    assert_problem(resp, 405, "method")
    assert "POST" in {m.strip() for m in resp.headers["Allow"].split(",")}
    health = client.post("/api/health")
    assert_problem(health, 405, "method")
    assert "GET" in health.headers["Allow"] and "POST" not in health.headers["Allow"]


@pytest.fixture(scope="module")
def small_upload_client(settings):
    return create_app(settings, max_upload_mb=1).test_client()


def test_too_large_is_413_naming_max_upload_mb(small_upload_client, demo_db) -> None:
    big = b'{"strategy_id": 1, "parameters": {}, "pad": "' + b" " * (1024 * 1024) + b'"}'
    problem = assert_problem(small_upload_client.post(BATCH, data=big, content_type="application/json"), 413, "body")
    assert "MAX_UPLOAD_MB = 1" in problem["detail"] and "MAX_UPLOAD_MB = 1" in problem["errors"][0]["message"]
    upload = small_upload_client.post(PRICES, data={"file": (io.BytesIO(b"x" * (1024 * 1024 + 1)), "BIG.csv")},
                                      content_type="multipart/form-data")
    assert "MAX_UPLOAD_MB = 1" in assert_problem(upload, 413, "body")["detail"]
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0 and repo.count_prices(conn) == 24 * 400


def test_wrong_content_type_is_415(client) -> None:
    assert_problem(client.post(BATCH, data="x=1", content_type="application/x-www-form-urlencoded"), 415, "body")
    assert_problem(client.post(PRICES, data=b"a,b\n", content_type="text/csv"), 415, "file")


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


def test_busy_is_429_with_retry_after(app, client, demo_db, monkeypatch) -> None:
    from api.services.admission import Admission

    service = app.extensions["backtest_service"]
    monkeypatch.setattr(service, "_admission", Admission(running=1, waiting=0))  # no queue: refused at once
    with service.admitted():
        resp = client.post(BATCH, json={"strategy_id": 1, "parameters": {}})
    assert_problem(resp, 429, "request")
    assert int(resp.headers["Retry-After"]) >= 1


def test_ready_with_the_database_down_is_503_problem_with_retry_after() -> None:
    client = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/nowhere")).test_client()
    resp = client.get("/api/ready")
    problem = assert_problem(resp, 503, "database")
    assert problem["database"] == "unreachable" and int(resp.headers["Retry-After"]) >= 1


def test_ready_with_migrations_behind_is_503_problem_with_retry_after(pg_admin_url) -> None:
    with fresh_database(pg_admin_url, prefix="bt_unmigrated") as url:
        app = create_app(Settings(database_url=url))
        try:
            resp = app.test_client().get("/api/ready")
        finally:
            app.extensions["db_engine"].dispose()
    problem = assert_problem(resp, 503, "database")
    assert problem["database"] == "reachable" and problem["at_head"] is False
    assert problem["current_revision"] is None and problem["head_revision"]
    assert int(resp.headers["Retry-After"]) >= 1
