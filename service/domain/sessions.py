"""When a session is live: the one rule, used by every flow that checks a session in Python.

Its SQL forms (service/db/liveness.py) are tested against the same table of cases
(tests/db/test_liveness.py), so the statement that rotates in bulk and the checks made in Python
cannot drift apart.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


def session_live(
    revoked_at: datetime | None,
    expires_at: datetime,
    last_used_at: datetime,
    now: datetime,
    idle: timedelta,
) -> bool:
    """Not revoked, before its absolute end, and used within the idle lifetime."""
    return revoked_at is None and now < expires_at and now < last_used_at + idle


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(0, math.floor((moment - now).total_seconds()))
