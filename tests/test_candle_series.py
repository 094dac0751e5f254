"""The packed candle series (migration 0008) equals the stored candles, every field's column bit for bit, after any
write; readers read only the fields they are asked for."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from api.config import Settings
from api.db import migrate
from api.db import repository as repo
from api.db.connection import db_config_for, make_engine
from api.services import read_ahead
from tests.pg import CANDLE_COLUMNS_SQL, assert_candle_series_matches_prices, fresh_database

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
    """Each column's packed bytes equal the server's aggregate, and load_candles gives crypto_prices' values
    bit for bit."""
    assert_candle_series_matches_prices(conn)
    for crypto_id in crypto_ids:
        got, want = repo.load_candles(conn.connection.driver_connection, crypto_id), _stored(conn, crypto_id)
        assert len(got) == got.candle_count == len(want["time"])
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
        columns = ", ".join(c for c, _ in CANDLE_COLUMNS_SQL)
        by_loader, by_trigger = (conn.execute(text(f"SELECT {columns}, first_time, last_time, candle_count "
                                                   "FROM crypto_candle_series WHERE crypto_id = :id"),
                                              {"id": i}).one() for i in (a, b))
    assert tuple(by_loader) == tuple(by_trigger)
    assert [len(v) for v in by_loader[:6]] == [8 * 50] * 6 and by_loader[-1] == 50


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
                migrate.upgrade(engine)  # through 0008 (and what builds on it) to head
                with engine.begin() as conn:
                    assert migrate.current_revision(conn) == migrate.head_revision()
                    assert_series_is_stored(conn, *ids)
                    assert _column_storage(conn) == {c: "e" for c, _ in CANDLE_COLUMNS_SQL}  # EXTERNAL
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


def _column_storage(conn) -> dict[str, str]:
    """The bytea columns of crypto_candle_series and their storage mode."""
    return dict(conn.execute(text(
        "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'crypto_candle_series'::regclass "
        "AND attnum > 0 AND NOT attisdropped AND atttypid = 'bytea'::regtype")).all())


SUBSETS = [("close",), ("close", "high"), ("open", "high", "low", "close"), ("time",), ("volume", "time"),
           repo.CANDLE_FIELDS]


def _assert_subset(series: repo.PriceSeries, full: repo.PriceSeries, fields) -> None:
    """series holds exactly `fields` (the others None), each equal bit for bit to the full read's."""
    assert series.fields() == frozenset(fields)
    assert (series.first_time, series.last_time, len(series)) == (full.first_time, full.last_time, len(full))
    for name in repo.CANDLE_FIELDS:
        arr = getattr(series, name)
        if name not in fields:
            assert arr is None, name
            continue
        assert arr.dtype == (np.int64 if name == "time" else np.float64) and arr.dtype.isnative
        assert arr.flags.c_contiguous and arr.flags.writeable
        assert np.array_equal(arr.view(np.uint64), getattr(full, name).view(np.uint64)), name


def _three_cryptos_and_an_empty_one(engine) -> list[int]:
    with engine.begin() as conn:
        ids = [repo.insert_cryptocurrency(conn, f"S{i}", "S") for i in range(4)]
        for i, crypto_id in enumerate(ids[:3]):
            _copy(conn, crypto_id, _candles(20 + i, seed=10 + i), upsert=False)
    return ids


@pytest.mark.parametrize("fields", SUBSETS, ids=["+".join(f) for f in SUBSETS])
def test_a_subset_of_fields_reads_exactly_those(empty_db, fields) -> None:
    ids = _three_cryptos_and_an_empty_one(empty_db)
    with empty_db.connect() as conn:
        dbapi = conn.connection.driver_connection
        full = {crypto_id: repo.load_candles(dbapi, crypto_id) for crypto_id in ids}
        assert full[ids[3]].candle_count == 0 and full[ids[3]].first_time is None
        for crypto_id in ids:  # any iterable of names, in any order
            for asked in (fields, list(reversed(fields)), frozenset(fields)):
                _assert_subset(repo.load_candles(dbapi, crypto_id, asked), full[crypto_id], fields)
            _assert_subset(read_ahead.take_candles(dbapi, crypto_id, fields), full[crypto_id], fields)  # no plan
        many = repo.load_candles_many(dbapi, ids, fields)
        assert sorted(many) == ids[:3]
        for crypto_id, series in many.items():
            _assert_subset(series, full[crypto_id], fields)
        with read_ahead.reading_ahead([({"id": i, "candles": len(full[i])},) for i in ids]):
            for crypto_id in ids:
                _assert_subset(read_ahead.take_candles(dbapi, crypto_id, iter(fields)), full[crypto_id], fields)
        with pytest.raises(ValueError, match="unknown candle fields"):
            repo.load_candles(dbapi, ids[0], ("close", "closes"))
        with pytest.raises(ValueError, match="unknown candle fields"):
            read_ahead.take_candles(dbapi, ids[0], ["adj_close"])


def test_read_ahead_reads_again_when_a_buffered_series_lacks_a_field(empty_db, monkeypatch) -> None:
    ids = _three_cryptos_and_an_empty_one(empty_db)[:3]
    reads: list[tuple[list[int], tuple[str, ...]]] = []
    real_many = repo.load_candles_many

    def counted_many(dbapi_conn, crypto_ids, fields=repo.CANDLE_FIELDS):
        reads.append((list(crypto_ids), tuple(sorted(fields))))
        return real_many(dbapi_conn, crypto_ids, fields)

    monkeypatch.setattr(repo, "load_candles_many", counted_many)
    with empty_db.connect() as conn:
        dbapi = conn.connection.driver_connection
        full = {crypto_id: repo.load_candles(dbapi, crypto_id) for crypto_id in ids}
        with read_ahead.reading_ahead([({"id": i, "candles": len(full[i])},) for i in ids]):
            _assert_subset(read_ahead.take_candles(dbapi, ids[0], {"close"}), full[ids[0]], ("close",))
            assert reads == [(ids, ("close",))]  # one group, closes only
            _assert_subset(read_ahead.take_candles(dbapi, ids[1], {"close", "high"}), full[ids[1]], ("close", "high"))
            assert reads[1:] == [(ids[1:], ("close", "high"))]  # the buffered closes lack the highs: read again
            _assert_subset(read_ahead.take_candles(dbapi, ids[2], {"close"}), full[ids[2]], ("close",))
            assert len(reads) == 2  # buffered with more fields than asked: no read, only the closes handed out
        assert read_ahead.current_plan() is None


def test_read_ahead_groups_hold_about_2_mib_of_the_fields_asked_for(monkeypatch) -> None:
    assert read_ahead.group_candles(frozenset({"close"})) == 262_144
    assert read_ahead.group_candles(frozenset({"close", "open"})) == 131_072
    assert read_ahead.group_candles(frozenset(repo.CANDLE_FIELDS)) == 43_690
    groups: list[list[int]] = []
    monkeypatch.setattr(repo, "load_candles_many", lambda conn, ids, fields: groups.append(list(ids)) or {})
    monkeypatch.setattr(repo, "load_candles", lambda conn, crypto_id, fields: None)
    plan = [({"id": i, "candles": 40_000},) for i in range(14)]
    for fields, size in (({"close"}, 6), (repo.CANDLE_FIELDS, 1)):
        groups.clear()
        with read_ahead.reading_ahead(plan):
            read_ahead.take_candles(None, 0, fields)
        assert groups == [list(range(size))]
