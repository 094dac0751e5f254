"""Persistence layer: connection handling (connection.py), migrations (migrate.py) and SQL (repository.py)."""
