"""Persistence: SQLAlchemy table definitions and the queries over them (no commits here)."""
