"""Two first uploads of one new symbol at once: one wins, the other waits and upserts (or gets a 409), never a 500."""
from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from sqlalchemy import text

from api.config import Settings
from api.db import repository as repo
from api.db.connection import db_config_for, make_engine
from api.services.errors import Conflict
from api.services.price_import import import_candles
from tests.pg import assert_candle_series_matches_prices
from tests.test_price_import import _candles

ROUNDS = 4


def _race(engine, bodies: list[bytes], symbol: str) -> list[BaseException | None]:
    """Run one import_candles per body in its own thread (own connection), all released at once."""
    start = threading.Barrier(len(bodies))
    outcome: list[BaseException | None] = [None] * len(bodies)

    def run(i: int) -> None:
        start.wait()
        try:
            import_candles(engine, io.BytesIO(bodies[i]), f"{symbol}.csv")
        except BaseException as exc:  # noqa: BLE001 - the test inspects every outcome
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcome


def test_two_first_uploads_of_a_new_symbol_end_as_one_whole_file(tmp_path, empty_db) -> None:
    """Same times, different prices: the stored series is all of one file, whichever committed last."""
    files = [_candles(3000, seed=s) for s in (1, 2)]
    bodies = [f.to_csv(index=False, float_format="%.17g").encode() for f in files]
    for _ in range(ROUNDS):
        outcome = _race(empty_db, bodies, "RACEUSDT")
        assert all(o is None or isinstance(o, Conflict) for o in outcome), outcome
        assert any(o is None for o in outcome)
        with empty_db.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cryptocurrencies")).scalar_one() == 1
            assert repo.count_prices(conn) == 3000
            got = repo.load_candles(conn.connection.driver_connection, repo.find_crypto(conn, symbol="RACEUSDT")["id"])
            assert_candle_series_matches_prices(conn)
        assert any(np.array_equal(got.close, f["Close"].to_numpy()) for f in files)
        with empty_db.begin() as conn:
            conn.execute(text("DELETE FROM cryptocurrencies"))


@pytest.fixture
def impatient_engine(db_url):
    """An engine whose lock_timeout is 200 ms: waiting for a held import lock gives up quickly."""
    engine = make_engine(db_config_for(db_url, Settings(lock_timeout_ms=200)), pool_size=1)
    yield engine
    engine.dispose()


def test_an_upload_that_cannot_get_the_symbol_lock_in_time_is_a_409(app, client, empty_db, impatient_engine,
                                                                    monkeypatch) -> None:
    body = _candles(20).to_csv(index=False).encode()
    monkeypatch.setitem(app.extensions, "db_engine", impatient_engine)
    with empty_db.begin() as holder:  # another import of LOCKUSDT holds the lock
        repo.lock_symbol_imports(holder, "lockusdt")
        with pytest.raises(Conflict):
            import_candles(impatient_engine, io.BytesIO(body), "LOCKUSDT.csv")
        resp = client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), "LOCKUSDT.csv")},
                           content_type="multipart/form-data")
        assert resp.status_code == 409 and resp.mimetype == "application/problem+json"
        assert int(resp.headers["Retry-After"]) >= 1 and resp.get_json()["errors"][0]["field"] == "symbol"
        other = client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), "OTHERUSDT.csv")},
                            content_type="multipart/form-data")
        assert other.status_code == 201  # another symbol does not wait
    assert client.post("/api/crypto/prices", data={"file": (io.BytesIO(body), "LOCKUSDT.csv")},
                       content_type="multipart/form-data").status_code == 201
