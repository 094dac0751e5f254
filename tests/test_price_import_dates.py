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
        return repo.load_closes(conn.connection.driver_connection, crypto["id"], with_times=True).times


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
    assert "CLIAMB 1d: read 12, stored 12, rejected 0" in accepted.output
    assert np.array_equal(_stored_times(empty_db, "CLIAMB"), _daily(12, JAN_1_2021 + 59 * 86_400))
    unknown = runner.invoke(args=["import-prices", "--date-format", "ydm", str(path)])
    assert unknown.exit_code != 0 and "--date-format" in unknown.output


def test_a_cell_not_in_the_files_format_is_a_rejected_row(tmp_path, empty_db) -> None:
    """In a dd/mm file, an mm/dd or ISO cell is a date in another format: its row is rejected, not guessed at."""
    path = tmp_path / "MIX.csv"
    frame = _dated_csv(path, "%d/%m/%Y", bad={20: "01/22/2021", 30: "2021-01-31", 40: "31/31/2021"})
    report = import_csv(empty_db, path)
    assert [(e["line"], e["value"], e["reason"]) for e in report.errors] == [
        (22, "01/22/2021", "date not in the file's format (dd/mm/yyyy)"),
        (32, "2021-01-31", "date not in the file's format (dd/mm/yyyy)"),
        (42, "31/31/2021", "unparseable date"),
    ]
    assert (report.date_format, report.rows_stored, report.rows_rejected) == ("dmy", 57, 3)
    assert np.array_equal(_stored_times(empty_db, "MIX"), np.delete(_daily(60), [20, 30, 40]))
    assert len(frame) == 60


def test_an_iso_file_does_not_guess_a_day_month_cell(tmp_path, empty_db) -> None:
    path = tmp_path / "ISOX.csv"
    _dated_csv(path, "%Y-%m-%d", n=30, bad={10: "11/01/2021"})
    report = import_csv(empty_db, path)
    assert report.date_format == "iso_or_epoch"
    assert [(e["line"], e["reason"]) for e in report.errors] == [(12, "date not in the file's format (ISO 8601 or epoch)")]
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
