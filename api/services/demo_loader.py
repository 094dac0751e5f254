"""Load the synthetic demo universe into the database with COPY, in one transaction."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from tqdm import tqdm

from api.db import repository as repo
from api.demo_data import iter_demo_cryptos


def seed_demo(engine: Engine, n_cryptos: int = 211, n_candles: int = 1828, seed: int = 42,
              interval: str = "1d", only_if_empty: bool = True, progress: bool = False) -> dict[str, Any]:
    """Store n_cryptos synthetic cryptos; skipped when prices exist and only_if_empty is set.

    Otherwise the synthetic cryptos already stored (with their candles and
    results) are replaced by this set, in the same transaction, so loading
    twice never collides on a symbol; imported cryptos are kept.
    """
    with engine.begin() as conn:
        if only_if_empty and repo.count_prices(conn) > 0:
            return {"loaded": False, "cryptos": 0, "rows": 0, "replaced": 0}
        replaced = repo.delete_synthetic_cryptos(conn)
        rows = 0
        cryptos = iter_demo_cryptos(n_cryptos=n_cryptos, n_candles=n_candles, seed=seed, interval=interval)
        for demo in tqdm(cryptos, total=n_cryptos, desc="demo data", unit="crypto", disable=not progress):
            crypto_id = repo.insert_cryptocurrency(conn, demo.symbol, demo.name, interval, is_synthetic=True)
            rows += repo.copy_prices(conn, crypto_id, demo.times, demo.open, demo.high, demo.low,
                                     demo.close, demo.volume, upsert=False)
    return {"loaded": True, "cryptos": n_cryptos, "rows": rows, "replaced": replaced}
