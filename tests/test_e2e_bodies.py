"""End to end through gunicorn: request bodies that are malformed, slow or never finish.

Raw sockets, because no well-behaved HTTP client sends these. Nothing here
asserts a duration: pytest-timeout bounds a hang, the assertions are about
what answered and what was still unfinished when it did.
"""
from __future__ import annotations

import json

import pytest

from api.db import repository as repo
from tests.served import TrickledBody, http_head, raw_exchange, read_response, request_json, running_gunicorn

BATCH = "/api/crypto/backtest/all"
PRICES = "/api/crypto/prices"
MALFORMED_CHUNK = b"ZZ\r\n{}\r\n0\r\n\r\n"  # a chunk size that is not hex
SLOW_BODY = json.dumps({"strategy_id": 1, "parameters": {}, "pad": " " * 1000}).encode()  # ~500 s at 2 bytes/s


def _assert_body_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == expected and problem["title"] and problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["body"]
    return problem


@pytest.fixture(scope="module")
def served(db_url):
    with running_gunicorn(db_url) as (base, _proc):
        yield base


@pytest.mark.e2e
@pytest.mark.parametrize("path, content_type", [(BATCH, "application/json"),
                                                (PRICES, "multipart/form-data; boundary=b")])
def test_malformed_chunked_body_is_400_naming_the_body(served, demo_db, path, content_type) -> None:
    status, headers, body = raw_exchange(served, http_head("POST", path, content_type, "Transfer-Encoding: chunked")
                                         + MALFORMED_CHUNK)
    problem = _assert_body_problem(status, headers, body, 400)
    assert "chunk" in problem["errors"][0]["message"].lower()
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0 and repo.count_prices(conn) == 24 * 400


@pytest.mark.e2e
def test_two_slow_bodies_do_not_starve_health_or_a_batch(served, demo_db) -> None:
    head = http_head("POST", BATCH, "application/json", f"Content-Length: {len(SLOW_BODY)}")
    with TrickledBody(served, head, SLOW_BODY) as first, TrickledBody(served, head, SLOW_BODY) as second:
        first.wait_sent(3)
        second.wait_sent(3)  # both bodies are being read by the server now
        assert request_json(served + "/api/health", timeout=60) == (200, {"status": "ok"})
        status, batch = request_json(served + BATCH, {"strategy_id": 1, "parameters": {}, "use_parallel": False},
                                     timeout=60)
        assert status == 200 and batch["summary"]["successful"] == 24
        assert not first.finished.is_set() and not second.finished.is_set()  # still trickling when both answered


@pytest.mark.e2e
def test_a_body_that_never_completes_gets_408(db_url, demo_db) -> None:
    with running_gunicorn(db_url, REQUEST_BODY_TIMEOUT_SECONDS="1") as (base, _proc):
        stalled = http_head("POST", BATCH, "application/json", "Content-Length: 100") + b'{"strategy_id": 1'
        problem = _assert_body_problem(*raw_exchange(base, stalled), 408)
        assert "REQUEST_BODY_TIMEOUT_SECONDS = 1" in problem["errors"][0]["message"]
        chunked = http_head("POST", PRICES, "multipart/form-data; boundary=b", "Transfer-Encoding: chunked")
        _assert_body_problem(*raw_exchange(base, chunked + b"4\r\n--b\r\n"), 408)
        # a body that keeps coming, a byte at a time, is cut off at the deadline all the same
        head = http_head("POST", BATCH, "application/json", f"Content-Length: {len(SLOW_BODY)}")
        with TrickledBody(base, head, SLOW_BODY) as slow:
            _assert_body_problem(*read_response(slow.sock), 408)
            assert not slow.finished.is_set()
        assert request_json(base + "/api/health")[0] == 200
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == 0
