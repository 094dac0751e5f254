"""The engine must stay importable without the web/DB stack."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CHECK = (
    "import api.engine, sys; "
    "bad=[m for m in ('flask','flask_restful','sqlalchemy','psycopg','psycopg2','pandas') "
    "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
)


def test_engine_imports_no_web_or_db_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
