"""A CSV is read, checked and COPYed block by block: what is only known late must still hold for the whole file."""
from __future__ import annotations

import numpy as np
import pytest

from api.db import repository as repo
from api.services import candle_files
from api.services.price_import import ImportRejected, import_csv
from tests.pg import assert_candle_series_matches_prices
from tests.test_price_import import _candles


@pytest.fixture
def small_blocks(monkeypatch):
    """~30 rows per block, so a 300-row file crosses many blocks (and many COPY writes)."""
    monkeypatch.setattr(candle_files, "CSV_BLOCK_BYTES", 2048)


def _series_matches_prices(engine) -> None:
    with engine.connect() as conn:
        assert_candle_series_matches_prices(conn)


def test_a_bad_cell_in_a_late_block_is_reported_and_nothing_is_stored_twice(tmp_path, empty_db, small_blocks) -> None:
    frame = _candles(300).astype(object)
    frame.at[250, "Close"] = "abc"         # first blocks are all numbers: the typed reader fails late
    frame.at[200, "Date"] = "not-a-date"
    path = tmp_path / "LATE.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert [(e["line"], e["reason"]) for e in report.errors] == [(202, "unparseable date"), (252, "not a number")]
    assert (report.rows_read, report.rows_stored, report.rows_rejected) == (300, 298, 2)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 298
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="LATE")["id"])
    good = np.delete(frame["Close"].to_numpy(), [200, 250]).astype(float)
    assert np.array_equal(got.close, good)
    _series_matches_prices(empty_db)


def test_duplicates_are_found_across_blocks_of_an_unsorted_file(tmp_path, empty_db, small_blocks) -> None:
    frame = _candles(300).iloc[::-1].reset_index(drop=True)  # newest first
    frame.loc[len(frame)] = frame.iloc[5]                      # repeats a time from the first block (line 302)
    path = tmp_path / "REV.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    report = import_csv(empty_db, path)
    assert [(e["line"], e["reason"]) for e in report.errors] == [(302, "duplicate timestamp")]
    assert (report.interval, report.rows_stored) == ("1d", 300)
    with empty_db.connect() as conn:
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="REV")["id"])
    assert np.array_equal(got.close, _candles(300)["Close"].to_numpy())  # stored in time order
    _series_matches_prices(empty_db)


def test_irregular_spacing_at_the_very_end_stores_nothing(tmp_path, empty_db, small_blocks) -> None:
    frame = _candles(300)
    frame.loc[len(frame)] = frame.iloc[-1]
    frame.at[300, "Date"] = "2024-10-27 07:00:00"  # 7 hours after the last daily candle
    path = tmp_path / "IRR.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    with pytest.raises(ImportRejected, match="irregular"):
        import_csv(empty_db, path)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.find_crypto(conn, symbol="IRR") is None


def test_a_reimport_counts_unchanged_candles_and_updates_the_rest(tmp_path, empty_db, small_blocks) -> None:
    frame = _candles(300)
    path = tmp_path / "SAME.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    import_csv(empty_db, path)
    again = import_csv(empty_db, path)
    assert (again.rows_stored, again.rows_unchanged) == (300, 300)
    frame.loc[[10, 20, 30], ["Close", "High"]] *= 1.5
    frame.to_csv(path, index=False, float_format="%.17g")
    changed = import_csv(empty_db, path)
    assert (changed.rows_stored, changed.rows_unchanged) == (300, 297)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 300
        got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="SAME")["id"])
    assert np.array_equal(got.close, frame["Close"].to_numpy())
    _series_matches_prices(empty_db)


def test_a_header_that_is_not_utf8_is_refused_as_a_whole(tmp_path, empty_db) -> None:
    path = tmp_path / "LATIN.csv"
    path.write_bytes("d\u00e4te,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n".encode("latin-1"))
    with pytest.raises(ImportRejected, match="not a readable CSV"):
        import_csv(empty_db, path)
    with empty_db.connect() as conn:
        assert repo.count_prices(conn) == 0 and repo.find_crypto(conn, symbol="LATIN") is None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_count_empty_lines(tmp_path, empty_db, small_blocks, newline) -> None:
    frame = _candles(200).astype(object)
    frame.at[150, "Close"] = "abc"   # data row 150: line 152 without empty lines
    frame.at[199, "Volume"] = "-1"   # the last row: line 201 without empty lines
    body = frame.to_csv(index=False, float_format="%.17g").splitlines()
    # an empty line before the header, two after data row 9 (line 11), one after data row 120
    lines = ["", *body[:11], "", "", *body[11:122], "", *body[122:], "", ""]
    path = tmp_path / "GAPS.csv"
    path.write_bytes(newline.join(lines).encode())
    report = import_csv(empty_db, path)
    assert [(e["line"], e["column"]) for e in report.errors] == [(152 + 4, "close"), (201 + 4, "volume")]
    assert [lines[e["line"] - 1].split(",")[0] for e in report.errors] == \
        [frame.at[150, "Date"], frame.at[199, "Date"]]  # the reported line holds that very row
    assert (report.rows_read, report.rows_stored) == (200, 198)


def test_an_upload_with_a_bad_cell_in_a_late_block_is_read_again(client, empty_db, small_blocks) -> None:
    """The upload's spooled stream is read twice (typed, then as text): both readers must rewind it."""
    import io

    frame = _candles(300).astype(object)
    frame.at[280, "High"] = "n/a"
    body = frame.to_csv(index=False, float_format="%.17g").encode()
    resp = client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), "MEMUSDT.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    report = resp.get_json()
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [(282, "not a number")]
    assert (report["rows_stored"], report["rows_rejected"]) == (299, 1)
    _series_matches_prices(empty_db)
