"""Crypto backtesting service.

`create_app` is the Flask app factory (`flask --app api ...`, gunicorn
`"api:create_app()"`). Flask is imported inside it, not here, so the engine
(`api.engine`) stays importable without any web or database stack.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from api.config import Settings


def create_app(settings: "Settings | None" = None, **overrides: Any) -> "Flask":
    """Build the Flask app; settings default to the environment (see api/config.py)."""
    from api.app import build_app

    return build_app(settings, **overrides)
