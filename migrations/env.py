"""Alembic environment: online migrations only, against the service's database.

A connection passed in `config.attributes["connection"]` (tests, the app's
bootstrap) is used as is; otherwise the URL comes from the same settings the
service uses, so `alembic upgrade head` and `make run` hit one database.
"""
from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from api.config import Settings
from api.db.connection import db_config_for, make_engine, resolve_database_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
        return
    settings = Settings.from_env()
    url = config.get_main_option("sqlalchemy.url") or resolve_database_url(settings)
    engine = make_engine(db_config_for(url, settings), pool_size=1, application_name="alembic")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
