"""`make run`: database up (embedded when no DATABASE_URL), migrated, demo data if empty, then gunicorn.

Everything before gunicorn happens once here, in one process, so gunicorn's
workers only ever attach to a ready database.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys

from api.config import REPO_ROOT, Settings
from api.services.catalog import upgrade_database
from api.db.connection import db_config_for, make_engine, resolve_database_url
from api.services.demo_loader import seed_demo

log = logging.getLogger("api.serve")


def prepare_database(settings: Settings) -> str:
    """Start/attach, migrate, load demo data when the database has none; return the URL."""
    url = resolve_database_url(settings)
    engine = make_engine(db_config_for(url, settings), pool_size=1)
    try:
        upgrade_database(engine)
        out = seed_demo(engine, settings.demo_cryptos, settings.demo_candles, settings.demo_seed,
                        only_if_empty=True, progress=True)
        if out["loaded"]:
            log.info("loaded %d synthetic demo cryptos (%d candles)", out["cryptos"], out["rows"])
    finally:
        engine.dispose()
    return url


def main() -> None:
    """Prepare the database, then replace this process with gunicorn."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    settings = Settings.from_env()
    url = prepare_database(settings)
    os.environ["DATABASE_URL"] = url
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    args = [gunicorn, "-c", str(REPO_ROOT / "gunicorn.conf.py"), "api:create_app()"]
    os.chdir(REPO_ROOT)
    os.execv(gunicorn, args)


if __name__ == "__main__":
    main()
