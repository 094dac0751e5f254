"""Dates have one format per file: dd/mm/yyyy against mm/dd/yyyy is decided on the whole date column, never per cell."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from api.db import repository as repo
from api.services import candle_files
from api.services.price_import import ImportRejected, import_csv
from tests.test_price_import import _candles

JAN_1_2021 = 1_609_459_200


def _dated_csv(path, strftime: str, n: int = 60, start: str = "2021-01-01", bad: dict[int, str] | None = None):
    """n daily candles from start with their dates written by strftime; bad puts other text in some date cells."""
    frame = _candles(n, start=start)
    frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime(strftime)
    for row, value in (bad or {}).items():
        frame.at[row, "Date"] = value
    frame.to_csv(path, index=False, float_format="%.17g")
    return frame


def _stored_times(engine, symbol: str) -> np.ndarray:
    with engine.connect() as conn:
        crypto = repo.find_crypto(conn, symbol=symbol)
        return repo.load_candles(conn.connection.driver_connection, crypto["id"]).time


def _daily(n: int, start: int = JAN_1_2021) -> np.ndarray:
    return start + 86_400 * np.arange(n)


@pytest.mark.parametrize("strftime, decided", [
    ("%d/%m/%Y", "dmy"), ("%m/%d/%Y", "mdy"), ("%d.%m.%Y", "dmy"), ("%m-%d-%Y", "mdy"), ("%d/%m/%Y %H:%M", "dmy"),
])
def test_day_month_order_is_decided_for_the_whole_file(tmp_path, empty_db, strftime, decided) -> None:
    """60 days of Jan-Mar 2021: the days over 12 tell the order, so every row lands on its own day."""
    path = tmp_path / "DMY.csv"
    _dated_csv(path, strftime)
    report = import_csv(empty_db, path)
    assert (report.date_format, report.interval, report.rows_stored, report.rows_rejected) == (decided, "1d", 60, 0)
    assert np.array_equal(_stored_times(empty_db, "DMY"), _daily(60))  # Jan 1 ... Mar 1, not spread over the year


def test_the_order_is_decided_on_the_whole_column_not_the_first_block(tmp_path, empty_db, monkeypatch) -> None:
    """The first blocks hold only Jan 1-12 (both readings fit); a later block settles it."""
    monkeypatch.setattr(candle_files, "CSV_BLOCK_BYTES", 512)  # a few rows per block
    path = tmp_path / "LATEDMY.csv"
    _dated_csv(path, "%d/%m/%Y", n=40)
    report = import_csv(empty_db, path)
    assert (report.date_format, report.rows_stored) == ("dmy", 40)
    assert np.array_equal(_stored_times(empty_db, "LATEDMY"), _daily(40))


def test_an_ambiguous_file_is_refused_naming_date_format(tmp_path, empty_db) -> None:
    path = tmp_path / "AMB.csv"
    _dated_csv(path, "%m/%d/%Y", n=12)  # Jan 1-12: 01/05/2021 is Jan 5 or May 1
    with pytest.raises(ImportRejected, match="ambiguous") as refused:
        import_csv(empty_db, path)
    assert refused.value.errors[0]["field"] == "date_format"
    assert "'Date'" in refused.value.detail and "date_format=dmy" in refused.value.detail
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.find_crypto(conn, symbol="AMB") is None


def test_an_ambiguous_upload_is_a_400_and_is_accepted_with_date_format(client, empty_db, tmp_path) -> None:
    path = tmp_path / "AMB.csv"
    _dated_csv(path, "%m/%d/%Y", n=12)
    body = path.read_bytes()

    def post(**form):
        return client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), "AMBUSDT.csv"), **form},
                           content_type="multipart/form-data")

    refused = post()
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["errors"][0]["field"] == "date_format" and "ambiguous" in problem["detail"]
    as_dmy = post(date_format="dmy")  # read as the 1st of each month: not a regular series
    assert as_dmy.status_code == 400 and "irregular" in as_dmy.get_json()["detail"]
    as_mdy = post(date_format="MDY")
    assert as_mdy.status_code == 201, as_mdy.get_json()
    assert (as_mdy.get_json()["date_format"], as_mdy.get_json()["rows_stored"]) == ("mdy", 12)
    assert np.array_equal(_stored_times(empty_db, "AMBUSDT"), _daily(12))
    unknown = post(date_format="yyyy/dd/mm")
    assert unknown.status_code == 400 and unknown.get_json()["errors"][0]["field"] == "date_format"


def test_cli_date_format_option(runner, empty_db, tmp_path) -> None:
    path = tmp_path / "CLIAMB.csv"
    _dated_csv(path, "%d/%m/%Y", n=12, start="2021-03-01")  # Mar 1-12, day first
    refused = runner.invoke(args=["import-prices", str(path)])
    assert refused.exit_code != 0 and "ambiguous" in refused.output
    accepted = runner.invoke(args=["import-prices", "--date-format", "dmy", str(path)])
    assert accepted.exit_code == 0, accepted.output
    assert "CLIAMB 1d: read 12, stored 12 (0 unchanged), rejected 0" in accepted.output
    assert np.array_equal(_stored_times(empty_db, "CLIAMB"), _daily(12, JAN_1_2021 + 59 * 86_400))
    unknown = runner.invoke(args=["import-prices", "--date-format", "ydm", str(path)])
    assert unknown.exit_code != 0 and "--date-format" in unknown.output


def test_a_cell_not_in_the_files_format_is_a_rejected_row(tmp_path, empty_db) -> None:
    """In a dd/mm file, an mm/dd or ISO cell is a date in another format: its row is rejected, not guessed at."""
    path = tmp_path / "MIX.csv"
    frame = _dated_csv(path, "%d/%m/%Y", bad={20: "01/22/2021", 30: "2021-01-31", 40: "31/31/2021"})
    report = import_csv(empty_db, path)
    assert [(e["line"], e["value"], e["reason"]) for e in report.errors] == [
        (22, "01/22/2021", "date not in the file's format (dd/mm/yyyy or dd/mm/yy)"),
        (32, "2021-01-31", "date not in the file's format (dd/mm/yyyy or dd/mm/yy)"),
        (42, "31/31/2021", "unparseable date"),
    ]
    assert (report.date_format, report.rows_stored, report.rows_rejected) == ("dmy", 57, 3)
    assert np.array_equal(_stored_times(empty_db, "MIX"), np.delete(_daily(60), [20, 30, 40]))
    assert len(frame) == 60


def test_an_iso_file_does_not_guess_a_day_month_cell(tmp_path, empty_db) -> None:
    path = tmp_path / "ISOX.csv"
    _dated_csv(path, "%Y-%m-%d", n=30, bad={10: "11/01/2021"})
    report = import_csv(empty_db, path)
    assert report.date_format == "iso"
    assert [(e["line"], e["reason"]) for e in report.errors] == [(12, "date not in the file's format (ISO 8601)")]
    assert np.array_equal(_stored_times(empty_db, "ISOX"), np.delete(_daily(30), [10]))


@pytest.mark.parametrize("word", ["now", "Today"])
def test_a_word_pandas_reads_as_the_clock_is_not_a_date(tmp_path, empty_db, word) -> None:
    path = tmp_path / "NOW.csv"
    _dated_csv(path, "%Y-%m-%d", n=10, bad={4: word})
    report = import_csv(empty_db, path)
    assert [(e["line"], e["reason"]) for e in report.errors] == [(6, "unparseable date")]
    assert np.array_equal(_stored_times(empty_db, "NOW"), np.delete(_daily(10), [4]))


def test_an_explicit_format_rejects_the_others(tmp_path, empty_db) -> None:
    path = tmp_path / "EXPL.csv"
    _dated_csv(path, "%Y-%m-%d", n=10)
    with pytest.raises(ImportRejected, match="no valid rows") as refused:
        import_csv(empty_db, path, date_format="epoch")
    assert "date not in the file's format (epoch s/ms/us)" in refused.value.detail
    assert import_csv(empty_db, path, date_format="iso").rows_stored == 10


@pytest.mark.parametrize("strftime, decided", [("%d/%m/%y", "dmy"), ("%m/%d/%y", "mdy"), ("%d-%m-%y", "dmy"),
                                               ("%m.%d.%y %H:%M", "mdy")])
def test_two_digit_years_are_day_month_year_decided_for_the_whole_file(tmp_path, empty_db, strftime,
                                                                       decided) -> None:
    """01/01/21 ... 09/02/21: the order is decided on the whole column, never cell by cell (no Jan 13 -> ...)."""
    path = tmp_path / "YY.csv"
    _dated_csv(path, strftime, n=40)
    report = import_csv(empty_db, path)
    assert (report.date_format, report.interval, report.rows_stored, report.rows_rejected) == (decided, "1d", 40, 0)
    assert np.array_equal(_stored_times(empty_db, "YY"), _daily(40))


def test_two_digit_years_take_their_century_as_strptime_does(tmp_path, empty_db) -> None:
    """69-99 are 19xx, 00-68 20xx: 31/12/68 is 2068, 01/01/69 is 1969."""
    path = tmp_path / "CENT.csv"
    frame = _dated_csv(path, "%d/%m/%Y", n=4)
    frame["Date"] = ["31/12/68", "01/01/69", "31/12/99", "01/01/00"]
    frame.to_csv(path, index=False, float_format="%.17g")
    assert import_csv(empty_db, path).rows_stored == 4
    expected = pd.to_datetime(["1969-01-01", "1999-12-31", "2000-01-01", "2068-12-31"]).as_unit("s").asi8
    assert np.array_equal(_stored_times(empty_db, "CENT"), expected)


def test_explicit_day_month_formats_take_two_digit_years(tmp_path, empty_db) -> None:
    path = tmp_path / "YYX.csv"
    _dated_csv(path, "%m/%d/%y", n=12)  # Jan 1-12: ambiguous under auto
    with pytest.raises(ImportRejected, match="ambiguous"):
        import_csv(empty_db, path)
    report = import_csv(empty_db, path, date_format="mdy")
    assert (report.date_format, report.rows_stored) == ("mdy", 12)
    assert np.array_equal(_stored_times(empty_db, "YYX"), _daily(12))


@pytest.mark.parametrize("value", ["01 Jan 2021", "2021/01/02", "Jan 5 2021", "2021.01.02", "2021-1-2", "20210102x"])
def test_auto_never_infers_a_cells_format_by_itself(tmp_path, empty_db, value) -> None:
    """In an ISO 8601 file, a date written any other way is a rejected row, not a cell pandas guesses at."""
    path = tmp_path / "ODD.csv"
    _dated_csv(path, "%Y-%m-%d", n=10, bad={4: value})
    report = import_csv(empty_db, path)
    assert report.date_format == "iso"
    assert [(e["line"], e["value"], e["reason"]) for e in report.errors] == [(6, value, "unparseable date")]
    assert np.array_equal(_stored_times(empty_db, "ODD"), np.delete(_daily(10), [4]))


@pytest.mark.parametrize("strftime", ["%d %b %Y", "%Y/%m/%d", "%b %d %Y"])
def test_a_file_of_dates_in_no_known_format_is_refused(tmp_path, empty_db, strftime) -> None:
    path = tmp_path / "NOFMT.csv"
    _dated_csv(path, strftime, n=20)
    with pytest.raises(ImportRejected, match="no valid rows") as refused:
        import_csv(empty_db, path)
    assert "unparseable date" in refused.value.detail and "ISO 8601" in refused.value.detail
    assert refused.value.errors[0]["field"] == "file"
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.find_crypto(conn, symbol="NOFMT") is None


@pytest.mark.parametrize("strftime", ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%SZ",
                                      "%Y-%m-%dT%H:%M:%S.000Z", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%d %H:%M+0000"])
@pytest.mark.parametrize("text_path", [False, True])
def test_iso_8601_is_read_as_iso(tmp_path, empty_db, strftime, text_path) -> None:
    """With or without a time, T, Z or an offset, on the typed reader or the text one (after a bad price cell)."""
    path = tmp_path / "ISO.csv"
    frame = _candles(30, start="2021-01-01")
    frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime(strftime)
    if text_path:
        frame = frame.astype(object)
        frame.at[7, "Close"] = "n/a"
    frame.to_csv(path, index=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert (report.date_format, report.rows_stored, report.rows_rejected) == ("iso", 30 - text_path, int(text_path))
    assert np.array_equal(_stored_times(empty_db, "ISO"), np.delete(_daily(30), [7] if text_path else []))


@pytest.mark.parametrize("per_second", [1, 10**3, 10**6])
@pytest.mark.parametrize("text_path", [False, True])
def test_epoch_numbers_are_read_as_epoch(tmp_path, empty_db, per_second, text_path) -> None:
    path = tmp_path / "EPO.csv"
    frame = _candles(30, start="2021-01-01")
    frame["Date"] = _daily(30) * per_second
    if text_path:
        frame = frame.astype(object)
        frame.at[7, "Close"] = "n/a"
    frame.to_csv(path, index=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert (report.date_format, report.rows_stored) == ("epoch", 30 - text_path)
    assert np.array_equal(_stored_times(empty_db, "EPO"), np.delete(_daily(30), [7] if text_path else []))


def test_an_epoch_cell_in_an_iso_file_is_another_format(tmp_path, empty_db) -> None:
    path = tmp_path / "ISOEP.csv"
    _dated_csv(path, "%Y-%m-%d", n=10, bad={3: str(JAN_1_2021 + 3 * 86_400)})
    report = import_csv(empty_db, path)
    assert report.date_format == "iso"
    assert [(e["line"], e["reason"]) for e in report.errors] == [(5, "date not in the file's format (ISO 8601)")]


@pytest.mark.parametrize("suffix", ["parquet", "xlsx"])
def test_the_report_names_the_format_of_parquet_and_xlsx(tmp_path, empty_db, suffix) -> None:
    frame = _candles(20, start="2021-01-01")  # days over 12 tell dd/mm
    path = tmp_path / f"FMT.{suffix}"
    if suffix == "parquet":
        frame.assign(Date=pd.to_datetime(frame["Date"], utc=True)).to_parquet(path, index=False)
    else:
        frame.assign(Date=pd.to_datetime(frame["Date"]).dt.strftime("%d/%m/%y")).to_excel(path, index=False)
    report = import_csv(empty_db, path)
    assert (report.date_format, report.rows_stored) == ("iso" if suffix == "parquet" else "dmy", 20)
    assert np.array_equal(_stored_times(empty_db, "FMT"), _daily(20))
