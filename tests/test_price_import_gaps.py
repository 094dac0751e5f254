"""Gaps are reported, not hidden: the import report and the crypto list count the missing candles."""
from __future__ import annotations

import io

import pandas as pd
import pytest
from sqlalchemy import text

from api.services.price_import import import_csv
from tests.pg import assert_candle_series_matches_prices
from tests.test_price_import import _candles


def _csv_of_days(days: list[str], seed: int = 1) -> bytes:
    """Daily candles on exactly these dates (the rows of a longer series with some days left out)."""
    frame = _candles(len(days), seed=seed)
    frame["Date"] = days
    return frame.to_csv(index=False, float_format="%.17g").encode()


def _upload(client, body: bytes, name: str):
    resp = client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), name)},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _listed_missing(client) -> dict[str, int]:
    body = client.get("/api/crypto/cryptocurrencies").get_json()
    return {c["symbol"]: c["missing_candles"] for c in body["cryptocurrencies"]}


def test_a_hole_is_reported_and_a_file_that_fills_it_lowers_the_count(client, empty_db) -> None:
    report = _upload(client, _csv_of_days(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]), "GAPUSDT.csv")
    assert (report["rows_stored"], report["missing_candles"]) == (4, 2)
    assert report["largest_gaps"] == [{"after": "2024-01-02T00:00:00Z", "before": "2024-01-05T00:00:00Z",
                                       "missing": 2}]
    assert _listed_missing(client) == {"GAPUSDT": 2}
    half = _upload(client, _csv_of_days(["2024-01-02", "2024-01-03"], seed=2), "GAPUSDT.csv")  # fills Jan 3
    assert (half["missing_candles"], half["largest_gaps"]) == (1, [
        {"after": "2024-01-03T00:00:00Z", "before": "2024-01-05T00:00:00Z", "missing": 1}])
    filled = _upload(client, _csv_of_days(["2024-01-03", "2024-01-04"], seed=3), "GAPUSDT.csv")
    assert (filled["missing_candles"], filled["largest_gaps"]) == (0, [])
    assert _listed_missing(client) == {"GAPUSDT": 0}
    with empty_db.connect() as conn:
        assert_candle_series_matches_prices(conn)


def test_the_five_largest_gaps_come_largest_first(tmp_path, empty_db) -> None:
    """Seven holes, one of them 2.5 years long: the report names the five largest, and counts every one."""
    days = pd.date_range("2018-01-01", "2021-12-31", freq="D")
    holes = {"2018-02-10": 3, "2018-03-10": 1, "2018-04-10": 5, "2018-05-10": 2, "2018-06-10": 4,
             "2018-07-10": 1, "2018-09-01": 912}  # first missing day -> days missing
    missing = pd.DatetimeIndex([])
    for first, n in holes.items():
        missing = missing.append(pd.date_range(first, periods=n, freq="D"))
    kept = days.difference(missing)
    path = tmp_path / "HOLES.csv"
    path.write_bytes(_csv_of_days(list(kept.strftime("%Y-%m-%d"))))
    report = import_csv(empty_db, path)
    assert (report.rows_stored, report.missing_candles) == (len(kept), sum(holes.values()))
    assert [(g["after"][:10], g["before"][:10], g["missing"]) for g in report.largest_gaps] == [
        ("2018-08-31", "2021-03-01", 912), ("2018-04-09", "2018-04-15", 5), ("2018-06-09", "2018-06-14", 4),
        ("2018-02-09", "2018-02-13", 3), ("2018-05-09", "2018-05-12", 2)]


def test_cli_prints_the_missing_candles_and_gaps(runner, tmp_path, empty_db) -> None:
    path = tmp_path / "CLIGAP.csv"
    path.write_bytes(_csv_of_days(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]))
    out = runner.invoke(args=["import-prices", str(path)])
    assert out.exit_code == 0, out.output
    assert "stored 4 (0 unchanged), rejected 0, 2 candles missing" in out.output
    assert "gap after 2024-01-02T00:00:00Z, before 2024-01-05T00:00:00Z: 2 missing" in out.output


def test_a_series_without_holes_lists_no_missing_candles(client, demo_db) -> None:
    listed = _listed_missing(client)
    assert len(listed) == 24 and set(listed.values()) == {0}


def _post(client, body: bytes, name: str):
    return client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), name)},
                       content_type="multipart/form-data")


def _series_state(client, empty_db) -> tuple:
    """What a refused file must leave as it was: the crypto list and every stored candle."""
    with empty_db.connect() as conn:
        prices = conn.execute(text("SELECT crypto_id, time, open, high, low, close, volume FROM crypto_prices "
                                   "ORDER BY crypto_id, time")).all()
    return client.get("/api/crypto/cryptocurrencies").get_json(), prices


@pytest.mark.parametrize("times, reason", [
    ([f"2024-01-{d:02d} 12:00:00" for d in range(11, 21)], "43200 s off"),  # daily, but at noon
    ([f"2024-01-{d:02d} 00:00:01" for d in range(11, 21)], "1 s off"),
    ([f"2024-01-{d:02d} {h:02d}:00:00" for d in range(11, 13) for h in range(24)], "this file has 1h"),
    (["2024-01-11", "2024-01-12", "2024-01-13 07:13:00"], "irregular"),  # off its own grid: as before
])
def test_a_file_off_the_stored_series_grid_is_refused_and_nothing_is_lost(client, empty_db, times, reason) -> None:
    """BTCUSDT holds daily candles at 00:00 UTC: a file that would put candles between them is a 400 naming file."""
    _upload(client, _csv_of_days([f"2024-01-{d:02d}" for d in range(1, 11)]), "BTCUSDT.csv")
    before = _series_state(client, empty_db)
    refused = _post(client, _csv_of_days(times, seed=2), "BTCUSDT.csv")
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json", refused.get_json()
    problem = refused.get_json()
    assert problem["errors"][0]["field"] == "file" and reason in problem["detail"], problem
    assert _series_state(client, empty_db) == before
    assert _listed_missing(client) == {"BTCUSDT": 0}


def test_a_file_on_the_stored_series_grid_is_merged(client, empty_db) -> None:
    """Candles before, inside and after the stored ones, all at 00:00: merged, gaps counted as usual."""
    _upload(client, _csv_of_days(["2024-01-05", "2024-01-06", "2024-01-07"]), "GRIDUSDT.csv")
    merged = _upload(client, _csv_of_days(["2024-01-01", "2024-01-02", "2024-01-06", "2024-01-10"], seed=2),
                     "GRIDUSDT.csv")
    assert (merged["rows_stored"], merged["missing_candles"]) == (4, 4)  # Jan 3-4 and Jan 8-9
    with empty_db.connect() as conn:
        assert_candle_series_matches_prices(conn)
