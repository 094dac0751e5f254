"""What the dashboard reads (issue 13): the page and its vendored files, a crypto's candles, a single backtest
that is only answered (store: false) with the curves a chart draws."""
from __future__ import annotations

import numpy as np
import pytest

from api.db import repository as repo

CANDLES = "/api/crypto/cryptocurrencies/{}/candles"


def test_the_page_and_its_files_are_served_with_a_strict_policy(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for asset in ("/static/app.js", "/static/style.css",
                  "/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js"):
        assert asset in html
        served = client.get(asset)
        assert served.status_code == 200 and len(served.data) > 100, asset
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    licence = client.get("/static/vendor/lightweight-charts/LICENSE.txt").get_data(as_text=True)
    notice = client.get("/static/vendor/lightweight-charts/NOTICE.txt").get_data(as_text=True)
    assert "Apache License" in licence and "TradingView" in notice
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404
    assert client.get("/api/nope").content_type == "application/problem+json"  # the API's 404 stays its own


def test_candles_are_the_stored_series_inside_the_span(client, demo_db) -> None:
    whole = client.get(CANDLES.format("SYN003")).get_json()
    with demo_db.connect() as conn:
        crypto = repo.find_crypto(conn, symbol="SYN003")
        stored = repo.load_candles(conn.connection.driver_connection, crypto["id"])
    assert whole["symbol"] == "SYN003" and whole["interval"] == "1d" and whole["count"] == 400
    assert [c["time"] for c in whole["candles"]] == stored.time.tolist()
    assert np.array_equal([c["close"] for c in whole["candles"]], stored.close)
    assert np.array_equal([c["high"] for c in whole["candles"]], stored.high)
    first = whole["candles"][0]["time"]
    day = 86_400
    span = client.get(CANDLES.format("syn003"), query_string={"start": first + 10 * day, "end": first + 19 * day})
    assert span.status_code == 400  # epoch numbers are not dates here: the route takes ISO dates, as a batch does
    from datetime import datetime, timezone
    iso = [datetime.fromtimestamp(t, timezone.utc).date().isoformat() for t in (first + 10 * day, first + 19 * day)]
    inside = client.get(CANDLES.format("syn003"), query_string={"start": iso[0], "end": iso[1]}).get_json()
    assert [c["time"] for c in inside["candles"]] == stored.time.tolist()[10:20] and inside["count"] == 10


@pytest.mark.parametrize("path, query, status, field", [
    ("NOPE", {}, 404, "symbol"),
    ("bad%00symbol", {}, 400, "symbol"),
    ("SYN001", {"start": "yesterday"}, 400, "start"),
    ("SYN001", {"start": "2025-06-01", "end": "2025-01-01"}, 400, "start"),
])
def test_bad_candle_requests_name_the_field(client, demo_db, path, query, status, field) -> None:
    resp = client.get(CANDLES.format(path), query_string=query)
    assert resp.status_code == status and resp.content_type == "application/problem+json", resp.get_data()
    assert field in [e["field"] for e in resp.get_json()["errors"]]


def test_a_single_backtest_can_be_answered_without_being_stored(client, demo_db) -> None:
    body = {"strategy_id": 1, "parameters": {"rsi_period": 9}, "symbol": "SYN002"}
    before = client.get("/api/crypto/backtest/batches").get_json()["batches"]
    unstored = client.post("/api/crypto/backtest", json={**body, "store": False}).get_json()
    assert unstored["batch_id"] is None
    assert client.get("/api/crypto/backtest/batches").get_json()["batches"] == before
    stored = client.post("/api/crypto/backtest", json=body).get_json()
    assert stored["batch_id"] is not None
    assert {k: v for k, v in unstored["result"].items() if k != "calculation_time_ms"} == \
        {k: v for k, v in stored["result"].items() if k != "calculation_time_ms"}
    assert client.post("/api/crypto/backtest", json={**body, "store": "no"}).status_code == 400


def test_the_curves_agree_with_the_metrics(client, demo_db) -> None:
    """buy_and_hold ends at buy_and_hold_return's value, the deepest drawdown is max_drawdown, and both follow
    their definitions bar by bar."""
    params = {"rsi_period": 9, "initial_investment": 5000, "transaction_fee": 0.25}
    r = client.post("/api/crypto/backtest", json={"strategy_id": 1, "parameters": params, "symbol": "SYN004",
                                                    "store": False}).get_json()["result"]
    curve = r["equity_curve"]
    closes = [c["close"] for c in client.get(CANDLES.format("SYN004")).get_json()["candles"]]
    assert len(curve) == len(closes) == r["candles"]
    hold = np.array([p["buy_and_hold"] for p in curve])
    assert hold[-1] == pytest.approx(5000 * (1 + r["buy_and_hold_return"] / 100), rel=1e-12)
    assert np.allclose(hold, 5000 * (1 - 0.0025) * np.array(closes) / closes[0], rtol=1e-13, atol=0)
    equity = np.array([p["equity"] for p in curve])
    peak = np.maximum.accumulate(equity)
    drawdown = np.array([p["drawdown"] for p in curve])
    assert np.allclose(drawdown, (peak - equity) / peak * 100, rtol=1e-12, atol=1e-12)
    assert drawdown.min() >= 0 and drawdown.max() == pytest.approx(r["max_drawdown"], rel=1e-12)
    assert r["max_drawdown"] > 0 and r["num_trades"] > 0  # a curve that could disagree
