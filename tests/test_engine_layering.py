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


def test_http_layer_reaches_engine_and_database_only_through_services() -> None:
    """api/http imports neither the engine nor the persistence layer: the registry, the metric list and the
    readiness check come through api.services."""
    import ast
    from pathlib import Path

    offenders = []
    for path in (Path(__file__).resolve().parents[1] / "api" / "http").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(("api.engine", "api.db"))]
    assert offenders == []
