"""Importing candle CSV files: every bad row reported with line and reason, good rows upserted, files refused whole."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from api.db import repository as repo
from api.services.candle_checks import detect_interval
from api.services.price_import import ImportRejected, import_candles, import_csv


def _candles(n: int, start: str = "2024-01-01", step: str = "1D", seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"Date": pd.date_range(start, periods=n, freq=step).strftime("%Y-%m-%d %H:%M:%S"),
                         "Open": open_, "High": np.maximum(open_, close) * 1.01,
                         "Low": np.minimum(open_, close) * 0.99, "Close": close, "Volume": rng.uniform(1, 9, n)})


def test_csv_round_trips_exactly(tmp_path, empty_db) -> None:
    frame = _candles(60)
    path = tmp_path / "ABCUSDT.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert (report.symbol, report.interval, report.rows_read, report.rows_stored, report.rows_rejected) == \
        ("ABCUSDT", "1d", 60, 60, 0)
    with empty_db.connect() as conn:
        crypto = repo.find_crypto(conn, symbol="ABCUSDT")
        got = repo.load_candles(conn.connection.driver_connection, crypto["id"])
    assert np.array_equal(got.close, frame["Close"].to_numpy())
    assert got.time[0] == pd.Timestamp("2024-01-01", tz="UTC").timestamp()


def test_every_bad_row_is_reported_with_its_line_and_reason(tmp_path, empty_db) -> None:
    frame = _candles(40).astype(object)
    cases = {  # data row index -> (column, value, reason)
        3: ("Date", "not-a-date", "unparseable date"),
        5: ("Close", "abc", "not a number"),
        7: ("Open", "-1", "price must be a positive finite number"),
        9: ("High", "0.5", "high below max(open, close)"),
        11: ("Low", "1e9", "low above min(open, close)"),
        13: ("Volume", "-3", "volume must be zero or positive"),
        15: ("Close", "", "missing value"),
    }
    for row, (col, value, _) in cases.items():
        frame.at[row, col] = value
    frame.loc[len(frame)] = frame.iloc[20]  # a duplicate timestamp (line 42)
    path = tmp_path / "BAD.csv"
    frame.to_csv(path, index=False)
    report = import_csv(empty_db, path)
    found = {(e["line"], e["reason"]) for e in report.errors}
    expected = {(row + 2, reason) for row, (_, _, reason) in cases.items()} | {(42, "duplicate timestamp")}
    assert found == expected
    assert report.rows_read == 41 and report.rows_rejected == 8 and report.rows_stored == 33
    assert sum(report.rejected_by_reason.values()) == report.rows_rejected


def test_reimport_updates_and_never_duplicates(tmp_path, empty_db) -> None:
    first = _candles(30)
    path = tmp_path / "UPD.csv"
    first.to_csv(path, index=False, float_format="%.17g")
    import_csv(empty_db, path)
    second = _candles(30, start="2024-01-21", seed=2)  # 10 days overlap, 20 new
    second.to_csv(path, index=False, float_format="%.17g")
    import_csv(empty_db, path)
    with empty_db.connect() as conn:
        crypto = repo.find_crypto(conn, symbol="UPD")
        got = repo.load_candles(conn.connection.driver_connection, crypto["id"])
    assert len(got) == 50
    assert np.array_equal(got.close[20:], second["Close"].to_numpy())  # overlapping candles were updated


@pytest.mark.parametrize("content, reason", [
    ("", "not a readable CSV table"),
    ("date,open,high,low,close,volume\n", "no rows"),
    ("when,price\n2024-01-01,1\n", "missing columns"),
    ("date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-02 07:13:00,1,1,1,1,1\n", "irregular"),
])
def test_failing_files_store_nothing(tmp_path, empty_db, content, reason) -> None:
    path = tmp_path / "X.csv"
    path.write_text(content)
    with pytest.raises(ImportRejected, match=reason):
        import_csv(empty_db, path)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.list_cryptos_with_data(conn) == []


def test_binary_garbage_and_bad_symbol_are_refused(tmp_path, empty_db) -> None:
    path = tmp_path / "GARBAGE.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ImportRejected):
        import_csv(empty_db, path)
    good = tmp_path / "OK.csv"
    _candles(20).to_csv(good, index=False)
    with pytest.raises(ImportRejected, match="symbol"):
        import_csv(empty_db, good, symbol="x'; drop table crypto_prices; --")


def test_epoch_times_and_hourly_interval() -> None:
    ms = pd.Series(pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC"))
    assert detect_interval(ms) == "1h"


def test_cli_imports_a_directory_and_the_batch_sees_it(runner, client, tmp_path, empty_db) -> None:
    for name, seed in (("AAAUSDT", 1), ("BBBUSDT", 2)):
        _candles(50, seed=seed).to_csv(tmp_path / f"{name}.csv", index=False)
    out = runner.invoke(args=["import-prices", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "AAAUSDT 1d: read 50, stored 50 (0 unchanged), rejected 0" in out.output
    batch = client.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}}).get_json()
    assert {r["symbol"] for r in batch["results"]} == {"AAAUSDT", "BBBUSDT"}


def test_upload_route_reports_rows_and_the_batch_sees_it(client, empty_db) -> None:
    import io

    csv = _candles(40).to_csv(index=False).encode()
    resp = client.post("/api/crypto/prices", data={"file": (io.BytesIO(csv), "UPLUSDT.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    report = resp.get_json()
    assert (report["symbol"], report["interval"], report["rows_stored"], report["rows_rejected"]) == \
        ("UPLUSDT", "1d", 40, 0)
    named = client.post("/api/crypto/prices", data={"file": (io.BytesIO(csv), "x.csv"), "symbol": "OTHER"},
                        content_type="multipart/form-data")
    assert named.status_code == 201 and named.get_json()["symbol"] == "OTHER"
    batch = client.post("/api/crypto/backtest/all", json={"strategy_id": 1, "parameters": {}}).get_json()
    assert {r["symbol"] for r in batch["results"]} == {"UPLUSDT", "OTHER"}


def test_upload_failures_are_4xx_and_store_nothing(app, client, empty_db) -> None:
    import io

    def post(data, content_type="multipart/form-data"):
        return client.post("/api/crypto/prices", data=data, content_type=content_type)

    assert post({}).status_code == 400
    assert post(b"date,open\n", "text/csv").status_code == 415
    garbage = post({"file": (io.BytesIO(bytes(range(256)) * 100), "G.csv")})
    assert garbage.status_code == 400 and garbage.get_json()["errors"][0]["field"] == "file"
    wrong = post({"file": (io.BytesIO(b"when,price\n1,2\n"), "W.csv")})
    assert wrong.status_code == 400 and "missing columns" in wrong.get_json()["detail"]
    sym = post({"file": (io.BytesIO(_candles(5).to_csv(index=False).encode()), "S.csv"), "symbol": "bad symbol!"})
    assert sym.status_code == 400 and sym.get_json()["errors"][0]["field"] == "symbol"
    app.config["MAX_CONTENT_LENGTH"], limit = 1000, app.config["MAX_CONTENT_LENGTH"]
    try:
        big = post({"file": (io.BytesIO(b"x" * 5000), "B.csv")})
        assert big.status_code == 413 and big.mimetype == "application/problem+json"
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limit
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0


def test_an_upload_with_two_files_is_refused_and_stores_nothing(client, empty_db) -> None:
    import io

    first, second = (_candles(10, seed=seed).to_csv(index=False).encode() for seed in (1, 2))
    resp = client.post("/api/crypto/prices", content_type="multipart/form-data",
                       data={"file": [(io.BytesIO(first), "ONEUSDT.csv"), (io.BytesIO(second), "TWOUSDT.csv")]})
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json", resp.get_json()
    problem = resp.get_json()
    assert problem["errors"][0]["field"] == "file" and "one file per request" in problem["detail"]
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.list_cryptos_with_data(conn) == []


def test_binance_kline_layout(tmp_path, empty_db) -> None:
    frame = _candles(30)
    open_ms = pd.to_datetime(frame["Date"], utc=True).astype("int64") // 10**6
    kline = pd.DataFrame({"t": open_ms, "o": frame["Open"], "h": frame["High"], "l": frame["Low"],
                          "c": frame["Close"], "v": frame["Volume"], "ct": open_ms + 86_399_999, "qv": 1.0,
                          "n": 10, "tb": 0.5, "tq": 0.5, "i": 0})
    path = tmp_path / "KLNUSDT-1d-2024-01.csv"
    kline.to_csv(path, index=False, header=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert (report.symbol, report.interval, report.rows_stored) == ("KLNUSDT", "1d", 30)
    with empty_db.connect() as conn:
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="KLNUSDT")["id"])
    assert np.array_equal(got.close, frame["Close"].to_numpy())


BINANCE_HEADER = ("Open time,Open,High,Low,Close,Volume,Close time,Quote asset volume,Number of trades,"
                  "Taker buy base asset volume,Taker buy quote asset volume,Ignore")


@pytest.mark.parametrize("open_time, per_second", [("Open time", 10**3), ("open_time", 10**3), ("OPEN TIME", 10**6),
                                                   ("opentime", 10**6)])
def test_binance_header_with_epoch_ms_or_us(tmp_path, empty_db, open_time, per_second) -> None:
    """Binance's own header: its open time (ms, or us in newer dumps) is the time; the other columns are ignored."""
    frame = _candles(30)
    seconds = pd.to_datetime(frame["Date"]).to_numpy().astype("datetime64[s]").astype(np.int64)  # naive = UTC
    opened = seconds * per_second
    binance = pd.DataFrame({"t": opened, "o": frame["Open"], "h": frame["High"], "l": frame["Low"],
                            "c": frame["Close"], "v": frame["Volume"], "ct": opened + 86_400 * per_second - 1,
                            "qv": 1.5, "n": 10, "tb": 0.5, "tq": 0.75, "i": 0})
    path = tmp_path / "BNBHDR.csv"
    path.write_text(BINANCE_HEADER.replace("Open time", open_time) + "\n"
                    + binance.to_csv(index=False, header=False, float_format="%.17g"))
    report = import_csv(empty_db, path)
    assert (report.interval, report.rows_stored, report.rows_rejected) == ("1d", 30, 0)
    with empty_db.connect() as conn:
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="BNBHDR")["id"])
    assert np.array_equal(got.close, frame["Close"].to_numpy())
    assert np.array_equal(got.time, seconds) and got.time[0] == 1_704_067_200  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize("times", ["datetime", "epoch_ms"])
def test_parquet_round_trips(tmp_path, empty_db, times) -> None:
    frame = _candles(45)
    stamps = pd.to_datetime(frame["Date"], utc=True)
    frame["Date"] = stamps if times == "datetime" else stamps.astype("int64") // 10**6
    path = tmp_path / "PQTUSDT.parquet"
    frame.to_parquet(path, index=False)
    report = import_csv(empty_db, path)
    assert (report.symbol, report.interval, report.rows_stored, report.rows_rejected) == ("PQTUSDT", "1d", 45, 0)
    with empty_db.connect() as conn:
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="PQTUSDT")["id"])
    assert np.array_equal(got.close, frame["Close"].to_numpy())
    assert got.time[0] == stamps.iloc[0].timestamp()


def test_garbage_parquet_is_refused(tmp_path, empty_db) -> None:
    path = tmp_path / "BAD.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 10)
    with pytest.raises(ImportRejected, match="Parquet"):
        import_csv(empty_db, path)


def test_xlsx_round_trips_and_formulas_are_never_evaluated(tmp_path, empty_db) -> None:
    import openpyxl

    frame = _candles(25)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Other"
    data = book.create_sheet("Candles")
    data.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        data.append(list(row))
    data["E5"] = "=1+1"  # a formula in Close of data row 4 (file line 5)
    path = tmp_path / "XLSUSDT.xlsx"
    book.save(path)
    report = import_candles(empty_db, path, path.name, sheet="Candles")
    assert (report.symbol, report.interval, report.rows_stored, report.rows_rejected) == ("XLSUSDT", "1d", 24, 1)
    assert report.errors == [{"line": 5, "column": "close", "value": "=1+1", "reason": "not a number"}]
    with pytest.raises(ImportRejected, match="no sheet"):
        import_candles(empty_db, path, path.name, sheet="Nope")


def test_xlsx_zip_bomb_and_entity_expansion_are_refused_unopened(tmp_path, empty_db, monkeypatch) -> None:
    import zipfile

    import api.services.candle_files as pi

    bomb = tmp_path / "BOMB.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (64 * 1024 * 1024))  # compresses to ~64 KB
    monkeypatch.setattr(pi, "MAX_XLSX_UNCOMPRESSED", 16 * 1024 * 1024)
    with monkeypatch.context() as m:  # refused from the archive's directory: no member is ever unpacked
        m.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("a zip bomb member was unpacked"))
        with pytest.raises(ImportRejected, match="zip bomb"):
            import_candles(empty_db, bomb, bomb.name)

    import openpyxl

    good = tmp_path / "ENT.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["date", "open", "high", "low", "close", "volume"])
    book.save(good)
    evil = tmp_path / "EVIL.xlsx"
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
           '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><workbook>&lol3;</workbook>')
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, lol if item.filename == "xl/workbook.xml" else src.read(item.filename))
    with pytest.raises(ImportRejected, match="EntitiesForbidden"):  # defusedxml refused the entity declarations
        import_candles(empty_db, evil, evil.name)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0


def test_100k_rows_with_one_percent_bad_rows_of_every_kind(tmp_path, empty_db) -> None:
    n = 100_000
    frame = _candles(n, step="1h").astype(object)
    kinds = [("Date", "31/31/2024", "unparseable date"), ("Close", "n/a", "not a number"),
             ("Open", "0", "price must be a positive finite number"), ("High", "0.0001", "high below max(open, close)"),
             ("Low", "1e12", "low above min(open, close)"), ("Volume", "-1", "volume must be zero or positive"),
             ("Close", "", "missing value")]
    rng = np.random.default_rng(3)
    bad_rows = rng.choice(np.arange(1, n), size=n // 100, replace=False)
    expected = {}
    for i, row in enumerate(sorted(bad_rows)):
        col, value, reason = kinds[i % len(kinds)]
        frame.at[row, col] = value
        expected[row + 2] = reason
    dupes = bad_rows[:50] - 1  # copy the timestamp of a neighbouring good row: duplicate timestamp
    dupes = [d for d in dupes if d + 2 not in expected and d + 1 + 2 not in expected and d + 1 < n]
    for d in dupes[:20]:
        frame.at[d + 1, "Date"] = frame.at[d, "Date"]
        expected[d + 1 + 2] = "duplicate timestamp"
    path = tmp_path / "HUGE.csv"
    frame.to_csv(path, index=False)
    report = import_csv(empty_db, path)
    got = {e["line"]: e["reason"] for e in report.errors}
    assert report.rows_rejected == len(expected) and len(report.errors) == min(1000, len(expected))
    assert all(expected[line] == reason for line, reason in got.items())
    assert report.rows_read == n and report.rows_stored + report.rows_rejected == n
    assert sum(report.rejected_by_reason.values()) == report.rows_rejected
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == report.rows_stored
