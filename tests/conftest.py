"""Shared fixtures: a real, migrated PostgreSQL database; the Flask `app`, `client`, `runner`."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import create_app
from api.config import Settings
from api.db import migrate
from api.db.connection import db_config_for, make_engine
from api.services.demo_loader import seed_demo
from tests.pg import fresh_database, postgres_server


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """tmp_path folders live in a folder of this session's own, removed at its end (unless --basetemp is given).

    pytest's default keeps them, under <tmp>/pytest-of-<user>/, past the session.
    """
    if getattr(config.option, "basetemp", "n/a") is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="bt-pytest-")
        config.add_cleanup(partial(shutil.rmtree, config.option.basetemp, ignore_errors=True))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with postgres_server() as (url, how):
        print(f"\ntests use PostgreSQL from {how}")
        yield url


@pytest.fixture(scope="session")
def db_url(pg_admin_url: str) -> Iterator[str]:
    """A database migrated to head, shared by the session (tests reset its data)."""
    with fresh_database(pg_admin_url) as url:
        engine = make_engine(db_config_for(url, Settings()), pool_size=1)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture(scope="session")
def db_engine(db_url: str, settings: Settings) -> Iterator[Engine]:
    engine = make_engine(db_config_for(db_url, settings), pool_size=2)
    yield engine
    engine.dispose()


def reset_data(engine: Engine) -> None:
    """Empty every data table (strategies stay: they are schema-owned reference data)."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE crypto_backtest_results, grid_results, backtest_batches, jobs, crypto_prices, cryptocurrencies, "
                          "idempotency_keys "
                          "RESTART IDENTITY CASCADE"))


@pytest.fixture
def empty_db(db_engine: Engine) -> Engine:
    reset_data(db_engine)
    return db_engine


@pytest.fixture
def demo_db(db_engine: Engine) -> Engine:
    """24 synthetic cryptos x 400 daily candles, freshly loaded."""
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=24, n_candles=400, seed=7, only_if_empty=False)
    return db_engine


@pytest.fixture(scope="module")
def demo_db_module(db_engine: Engine) -> Engine:
    """Like demo_db, loaded once for a whole module (property-based tests call it per example)."""
    reset_data(db_engine)
    seed_demo(db_engine, n_cryptos=24, n_candles=400, seed=7, only_if_empty=False)
    return db_engine


@pytest.fixture
def services(db_engine: Engine, db_url: str, settings: Settings) -> Iterator[dict[int, Any]]:
    """Services whose pools have 1 and 2 workers, by size (their pools shut down after the test)."""
    from api.services import CryptoBacktestService
    from api.services.fanout import shutdown_pools

    config = db_config_for(db_url, settings)
    yield {n: CryptoBacktestService(db_engine, config, max_processes=n) for n in (1, 2)}
    shutdown_pools()


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()
