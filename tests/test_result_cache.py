"""Nothing computed twice: a stored result answers a repeated request while its keys still hold.

Keys: strategy, canonical parameters (common ones included), crypto, span and
the crypto's data version, which any change to its candles bumps in the same
transaction.
"""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

import api.services.backtest_service as svc_module
from api.db import repository as repo

BATCH = "/api/crypto/backtest/all"


def _computations(monkeypatch, reader: str = "_backtest_crypto") -> list[str]:
    """Symbols the (in-process, sequential) batch actually computes, in order (a grid's reader: _grid_crypto)."""
    seen: list[str] = []
    real = getattr(svc_module, reader)

    def counting(crypto, *args, **kwargs):
        seen.append(crypto["symbol"])
        return real(crypto, *args, **kwargs)

    monkeypatch.setattr(svc_module, reader, counting)
    return seen


def add_a_candle(engine, symbol: str) -> None:
    """One more candle for `symbol` (its data version moves on)."""
    with engine.begin() as conn:
        crypto = repo.find_crypto(conn, symbol=symbol)
        t = np.array([np.datetime64("2030-01-01T00:00:00")])
        repo.copy_prices(conn, crypto["id"], t, np.ones(1) * 50, np.ones(1) * 51, np.ones(1) * 49, np.ones(1) * 50,
                         np.ones(1))


def _post(client, **body):
    resp = client.post(BATCH, json={"strategy_id": 1, "parameters": {}, "use_parallel": False, **body})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_repeated_request_is_answered_from_the_store(client, demo_db, monkeypatch) -> None:
    first = _post(client)
    assert first["summary"]["computed"] == 24 and first["summary"]["from_store"] == 0
    computed = _computations(monkeypatch)
    with demo_db.connect() as conn:
        rows = repo.count_results(conn)
    again = _post(client)
    assert computed == [] and again["summary"]["computed"] == 0 and again["summary"]["from_store"] == 24
    assert again["results"] == first["results"]  # bit for bit, the stored calculation time included
    read_back = client.get(f"/api/crypto/backtest/batches/{again['summary']['batch_id']}").get_json()
    assert read_back == again  # a batch answered from the store reads back as it answered
    with demo_db.connect() as conn:
        assert repo.count_results(conn) == rows  # nothing stored twice


def test_new_candles_for_one_crypto_recompute_that_crypto_only(client, demo_db, monkeypatch) -> None:
    first = _post(client)
    add_a_candle(demo_db, "SYN003")
    computed = _computations(monkeypatch)
    again = _post(client)
    assert computed == ["SYN003"]
    assert again["summary"]["computed"] == 1 and again["summary"]["from_store"] == 23
    before = {r["symbol"]: r for r in first["results"]}
    for row in again["results"]:
        if row["symbol"] == "SYN003":
            assert row["candles"] == before["SYN003"]["candles"] + 1
            assert row["data_version"] != before["SYN003"]["data_version"]
        else:
            assert row == before[row["symbol"]]


@pytest.mark.parametrize("change", [{"parameters": {"transaction_fee": 0.2}},
                                    {"parameters": {"execution": "next_open"}},
                                    {"parameters": {"stop_loss_pct": 10}},
                                    {"start": "2020-06-01"},
                                    {"strategy_id": 7}])
def test_another_key_misses(client, demo_db, change) -> None:
    _post(client)
    other = _post(client, **change)
    assert other["summary"]["computed"] == 24 and other["summary"]["from_store"] == 0
    assert _post(client, **change)["summary"]["from_store"] == 24


def test_use_cache_false_recomputes_the_same_numbers(client, demo_db, monkeypatch) -> None:
    first = _post(client)
    computed = _computations(monkeypatch)
    fresh = _post(client, use_cache=False)
    assert len(computed) == 24 and fresh["summary"]["computed"] == 24 and fresh["summary"]["from_store"] == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in rows]  # noqa: E731
    assert strip(fresh["results"]) == strip(first["results"])


def test_errors_that_follow_from_the_data_are_kept_and_others_are_not(client, demo_db) -> None:
    orb = {"strategy_id": 6}
    first = _post(client, **orb)  # daily candles: insufficient_data for every crypto
    assert {r["error"]["code"] for r in first["results"]} == {"insufficient_data"}
    assert _post(client, **orb)["summary"]["from_store"] == 24
    with demo_db.begin() as conn:  # a result lost to the machinery must be computed again
        conn.execute(text("UPDATE crypto_backtest_results SET error = '{\"code\": \"worker_lost\", \"message\": \"x\"}'"
                          " WHERE crypto_id = (SELECT id FROM cryptocurrencies WHERE symbol = 'SYN001')"))
    assert _post(client, **orb)["summary"]["computed"] == 1


def test_a_crypto_imported_again_gets_a_new_version(client, demo_db) -> None:
    first = _post(client, symbols=["SYN004"])
    with demo_db.begin() as conn:
        series = repo.load_candles(conn.connection.driver_connection,
                                   repo.find_crypto(conn, symbol="SYN004")["id"])
        conn.execute(text("DELETE FROM cryptocurrencies WHERE symbol = 'SYN004'"))
        cid = repo.insert_cryptocurrency(conn, "SYN004", "again", is_synthetic=True)
        repo.copy_prices(conn, cid, series.time.astype("datetime64[s]"), series.open, series.high, series.low,
                         series.close, series.volume, upsert=False)
    again = _post(client, symbols=["SYN004"])
    assert again["summary"]["computed"] == 1
    assert again["results"][0]["data_version"] != first["results"][0]["data_version"]
    assert again["results"][0]["total_return"] == first["results"][0]["total_return"]
