"""The packed candle series (migration 0008) equals the stored candles, every field bit for bit, after any write."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from api.config import Settings
from api.db import migrate
from api.db import repository as repo
from api.db.connection import db_config_for, make_engine
from tests.pg import assert_candle_series_matches_prices, fresh_database

DAY = 86_400
JAN_1_2024 = 1_704_067_200
FIELDS = ("open", "high", "low", "close", "volume")


def _candles(n: int, start: int = JAN_1_2024, seed: int = 0) -> dict[str, np.ndarray]:
    """n daily candles with awkward floats: subnormal, huge, -0.0 and NaN volumes (storage keeps any float)."""
    rng = np.random.default_rng(seed)
    out = {"time": start + DAY * np.arange(n, dtype=np.int64)}
    for name in FIELDS:
        out[name] = rng.lognormal(3.0, 2.0, n)
    out["open"][:1] = 5e-324
    out["high"][1:2] = 1.7e308
    out["volume"][2:3] = -0.0
    out["volume"][3:4] = np.nan
    return out


def _copy(conn, crypto_id: int, c: dict[str, np.ndarray], upsert: bool) -> None:
    repo.copy_prices(conn, crypto_id, c["time"].astype("datetime64[s]"), *(c[f] for f in FIELDS), upsert=upsert)


def _stored(conn, crypto_id: int) -> dict[str, np.ndarray]:
    """The candles crypto_prices holds, read row by row (the source of truth)."""
    rows = conn.execute(text("SELECT extract(epoch FROM time)::bigint, open, high, low, close, volume "
                             "FROM crypto_prices WHERE crypto_id = :id ORDER BY time"), {"id": crypto_id}).all()
    cols = list(zip(*rows)) if rows else [()] * 6
    return {"time": np.array(cols[0], dtype=np.int64),
            **{f: np.array(v, dtype=np.float64) for f, v in zip(FIELDS, cols[1:])}}


def assert_series_is_stored(conn, *crypto_ids: int) -> None:
    """Packed bytes equal the server's aggregate, and load_candles gives crypto_prices' values bit for bit."""
    assert_candle_series_matches_prices(conn)
    for crypto_id in crypto_ids:
        got, want = repo.load_candles(conn.connection.driver_connection, crypto_id), _stored(conn, crypto_id)
        assert len(got) == len(want["time"])
        for name in ("time", *FIELDS):
            arr = getattr(got, name)
            assert arr.dtype == (np.int64 if name == "time" else np.float64) and arr.dtype.isnative
            assert arr.flags.c_contiguous and arr.flags.writeable
            assert np.array_equal(arr.view(np.uint64), want[name].view(np.uint64)), name
        if len(got):
            assert (got.first_time, got.last_time) == (int(want["time"][0]), int(want["time"][-1]))
        else:
            assert got.first_time is None and got.last_time is None


def test_loader_copy_then_upsert_append_insert_delete_truncate(empty_db) -> None:
    c = _candles(30)
    with empty_db.begin() as conn:
        a = repo.insert_cryptocurrency(conn, "AAA", "A")
        b = repo.insert_cryptocurrency(conn, "BBB", "B")
        _copy(conn, a, c, upsert=False)  # first import: the loader writes the series itself
        _copy(conn, b, _candles(5, seed=1), upsert=True)  # first candles through the trigger
    with empty_db.begin() as conn:
        assert_series_is_stored(conn, a, b)
        assert repo.total_candles(conn) == 35
        assert [r["candles"] for r in repo.list_cryptos_with_data(conn)] == [30, 5]
        assert repo.series_first_time(conn, a) == JAN_1_2024

        changed = _candles(20, start=JAN_1_2024 + 20 * DAY, seed=2)  # 10 overlapping (updated), 10 new after
        _copy(conn, a, changed, upsert=True)
        assert_series_is_stored(conn, a, b)

        for k in range(3):  # one candle at a time after the last: the append path
            t = JAN_1_2024 + (40 + k) * DAY
            conn.execute(text("INSERT INTO crypto_prices VALUES (:a, to_timestamp(:t), 1.5, 2.5, 0.5, :c, 7)"),
                         {"a": a, "t": t, "c": 10.0 + k})
            assert_series_is_stored(conn, a)
        _copy(conn, a, _candles(4, start=JAN_1_2024 + 50 * DAY, seed=3), upsert=True)  # a later block, upserted
        assert_series_is_stored(conn, a)

        # in the middle (a gap day) and before the first: the rebuild path
        conn.execute(text("INSERT INTO crypto_prices VALUES (:a, to_timestamp(:t), 3, 4, 2, 3.5, 0)"),
                     {"a": a, "t": JAN_1_2024 + 45 * DAY})
        conn.execute(text("INSERT INTO crypto_prices VALUES (:a, to_timestamp(:t), 3, 4, 2, 3.25, 1)"),
                     {"a": a, "t": JAN_1_2024 - DAY})
        assert_series_is_stored(conn, a)
        conn.execute(text("UPDATE crypto_prices SET volume = volume * 2, high = high + 1 WHERE crypto_id = :a "
                          "AND time > to_timestamp(:t)"), {"a": a, "t": JAN_1_2024 + 10 * DAY})
        assert_series_is_stored(conn, a)

        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :a AND time < to_timestamp(:t)"),
                     {"a": a, "t": JAN_1_2024 + 3 * DAY})
        assert_series_is_stored(conn, a, b)
        conn.execute(text("DELETE FROM crypto_prices WHERE crypto_id = :b"), {"b": b})
        assert_series_is_stored(conn, a, b)
        assert len(repo.load_candles(conn.connection.driver_connection, b)) == 0
        assert repo.load_candles_many(conn.connection.driver_connection, [a, b]).keys() == {a}

        conn.execute(text("TRUNCATE crypto_prices"))
        assert_series_is_stored(conn, a, b)
        assert repo.total_candles(conn) == 0 and repo.list_cryptos_with_data(conn) == []


def test_load_candles_many_equals_load_candles(empty_db) -> None:
    with empty_db.begin() as conn:
        ids = [repo.insert_cryptocurrency(conn, f"M{i}", "M") for i in range(4)]
        for i, crypto_id in enumerate(ids[:3]):
            _copy(conn, crypto_id, _candles(10 + i, seed=i), upsert=False)
    with empty_db.connect() as conn:
        dbapi = conn.connection.driver_connection
        many = repo.load_candles_many(dbapi, ids)
        assert sorted(many) == sorted(ids[:3])
        for crypto_id, series in many.items():
            one = repo.load_candles(dbapi, crypto_id)
            assert (one.first_time, one.last_time) == (series.first_time, series.last_time)
            for name in ("time", *FIELDS):
                assert np.array_equal(getattr(one, name).view(np.uint64), getattr(series, name).view(np.uint64))


def test_loader_falls_back_to_the_server_for_fractional_seconds_and_an_existing_series(empty_db) -> None:
    c = _candles(6)
    with empty_db.begin() as conn:
        a = repo.insert_cryptocurrency(conn, "FRAC", "F")
        times = c["time"].astype("datetime64[s]").astype("datetime64[us]") + np.timedelta64(250_000, "us")
        repo.copy_prices(conn, a, times, *(c[f] for f in FIELDS), upsert=False)
        assert_candle_series_matches_prices(conn)
        later = _candles(3, start=JAN_1_2024 + 30 * DAY, seed=4)
        _copy(conn, a, later, upsert=False)  # "new crypto" COPY on one that has a series: rebuilt
        assert_candle_series_matches_prices(conn)


def test_the_loader_writes_the_bytes_the_trigger_would(empty_db) -> None:
    c = _candles(50, seed=9)
    with empty_db.begin() as conn:
        a = repo.insert_cryptocurrency(conn, "LDR", "L")
        b = repo.insert_cryptocurrency(conn, "TRG", "T")
        _copy(conn, a, c, upsert=False)
        _copy(conn, b, c, upsert=True)
        by_loader, by_trigger = (conn.execute(text("SELECT candles, first_time, last_time, candle_count "
                                                   "FROM crypto_candle_series WHERE crypto_id = :id"),
                                              {"id": i}).one() for i in (a, b))
    assert tuple(by_loader) == tuple(by_trigger)
    assert len(by_loader[0]) == 48 * 50


def _close_series_matches_prices(conn) -> None:
    """0007's shape: one float8 per close."""
    expected = conn.execute(text(
        "SELECT crypto_id, string_agg(float8send(close), ''::bytea ORDER BY time), min(time), max(time), count(*) "
        "FROM crypto_prices GROUP BY crypto_id ORDER BY crypto_id")).all()
    actual = conn.execute(text("SELECT crypto_id, closes, first_time, last_time, candles "
                               "FROM crypto_close_series ORDER BY crypto_id")).all()
    assert [tuple(r) for r in actual] == [tuple(r) for r in expected] and actual


@pytest.mark.parametrize("cycles", [1, 2])
def test_migration_0008_up_and_down_rebuild_the_series(pg_admin_url: str, cycles: int) -> None:
    insert = text("INSERT INTO crypto_prices SELECT :id, to_timestamp(:t0 + 86400 * g), g + 0.5, g + 1.5, g + 0.25, "
                  "g * 1.1 + :id, g * 0.001 FROM generate_series(0, :n - 1) g")
    with fresh_database(pg_admin_url, prefix="bt_migr8") as url:
        engine = make_engine(db_config_for(url, Settings()), pool_size=1)
        try:
            migrate.upgrade(engine, "0007")
            with engine.begin() as conn:
                ids = [conn.execute(text("INSERT INTO cryptocurrencies (symbol, name) VALUES (:s, :s) RETURNING id"),
                                    {"s": s}).scalar_one() for s in ("UP1", "UP2", "EMPTY")]
                for crypto_id, n in zip(ids[:2], (40, 7)):
                    conn.execute(insert, {"id": crypto_id, "t0": JAN_1_2024, "n": n})
                _close_series_matches_prices(conn)
            for k in range(cycles):
                migrate.upgrade(engine, "0008")
                with engine.begin() as conn:
                    assert migrate.current_revision(conn) == "0008"
                    assert_series_is_stored(conn, *ids)
                    conn.execute(insert, {"id": ids[1], "t0": JAN_1_2024 + (7 + 3 * k) * DAY, "n": 3})  # triggers work
                    assert_series_is_stored(conn, ids[1])
                    assert conn.execute(text("SELECT to_regclass('crypto_close_series')")).scalar() is None
                migrate.downgrade(engine, "0007")
                with engine.begin() as conn:
                    assert migrate.current_revision(conn) == "0007"
                    assert conn.execute(text("SELECT to_regclass('crypto_candle_series')")).scalar() is None
                    _close_series_matches_prices(conn)
                    conn.execute(insert, {"id": ids[0], "t0": JAN_1_2024 + (40 + 2 * k) * DAY, "n": 2})  # 0007 appends
                    _close_series_matches_prices(conn)
            migrate.upgrade(engine)
            with engine.begin() as conn:
                assert_series_is_stored(conn, *ids)
        finally:
            engine.dispose()
