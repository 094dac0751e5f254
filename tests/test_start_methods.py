"""Parallel == sequential under fork, spawn and forkserver, on hypothesis-generated prices and parameters."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.db import repository as repo
from api.db.connection import db_config_for
from api.services import CryptoBacktestService
from api.services.fanout import shutdown_pools
from tests.conftest import reset_data

series = st.lists(st.lists(st.floats(min_value=0.01, max_value=1e5, allow_nan=False), min_size=2, max_size=120),
                  min_size=2, max_size=5)
parameters = st.fixed_dictionaries({
    "rsi_period": st.integers(min_value=2, max_value=20),
    "oversold_threshold": st.floats(min_value=0, max_value=49),
    "overbought_threshold": st.floats(min_value=51, max_value=100),
    "transaction_fee": st.floats(min_value=0, max_value=2),
})


@pytest.fixture(scope="module")
def services(db_engine, db_url, settings):
    cfg = db_config_for(db_url, settings)
    yield {m: CryptoBacktestService(db_engine, cfg, start_method=m) for m in ("fork", "spawn", "forkserver")}
    shutdown_pools()


def _strip(results):
    return [{k: v for k, v in r.items() if k != "calculation_time_ms"} for r in results]


@pytest.mark.timeout(600)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(closes=series, params=parameters)
def test_parallel_equals_sequential_under_every_start_method(services, db_engine, closes, params) -> None:
    reset_data(db_engine)
    with db_engine.begin() as conn:
        for i, c in enumerate(closes):
            cid = repo.insert_cryptocurrency(conn, f"H{i}", f"Hypothesis {i}")
            px = np.array(c)
            t = (np.datetime64("2024-01-01") + np.arange(len(px))).astype("datetime64[s]")
            repo.copy_prices(conn, cid, t, px, px, px, px, np.ones(len(px)), upsert=False)
    sequential = services["fork"].run_strategy_against_all_cryptos(1, params, use_parallel=False, store=False)
    for method, service in services.items():
        parallel = service.run_strategy_against_all_cryptos(1, params, use_parallel=True, store=False)
        assert parallel["summary"]["parallel"] is True
        assert _strip(parallel["results"]) == _strip(sequential["results"]), method
