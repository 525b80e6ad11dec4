"""The SQL forms of the session liveness rule (service/domain/sessions.py holds the Python one;
tests/db/test_liveness.py runs one table of cases through all of them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_

from service.db.models import session


def live_sql(*, revoked_at: str, expires_at: str, last_used_at: str, now: str, idle: str) -> str:
    """The rule as a fragment of a hand-written statement, over the given column and parameter
    expressions."""
    return f"{revoked_at} IS NULL AND {expires_at} > {now} AND {last_used_at} + {idle} > {now}"


def live_clause(now: datetime, idle_ttl: int) -> ColumnElement[bool]:
    """The rule over the session table, for SQLAlchemy Core statements."""
    return and_(
        session.c.revoked_at.is_(None),
        session.c.expires_at > now,
        # Written as last_used_at > now - idle so that the (user_id, last_used_at) index serves it.
        session.c.last_used_at > now - timedelta(seconds=idle_ttl),
    )
