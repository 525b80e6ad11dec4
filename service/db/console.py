"""Queries of the support console over users and their audit trail. They never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import user

# Above every character a real email holds, in the byte order of text_pattern_ops.
_TOP = "\U0010ffff"


class UserMatch(NamedTuple):
    id: uuid.UUID
    email: str
    created_at: datetime
    email_verified_at: datetime | None
    disabled_at: datetime | None
    # lower(email): where the next page starts.
    email_key: str


async def search_users_by_prefix(
    conn: AsyncConnection, prefix: str, after: str | None, limit: int
) -> list[UserMatch]:
    """Users whose lower(email) starts with lower(prefix), in byte order of lower(email),
    strictly after `after` (the previous page's last lower(email)); at most `limit`.

    Written as a range with the pattern operators (~>=~, ~<~) so that it is a range scan of
    ix_user_email_lower_prefix, whatever the collation and even in a generic plan (LIKE with a
    parameter is only indexable when the planner sees the value). starts_with() rechecks the
    range's upper bound for the (unused in emails) top code point.
    """
    key = func.lower(user.c.email)
    low = func.lower(literal(prefix))
    conditions = [
        key.op("~>=~", is_comparison=True)(low),
        key.op("~<~", is_comparison=True)(low.concat(_TOP).self_group()),
        func.starts_with(key, low),
    ]
    if after is not None:
        conditions.append(key.op("~>~", is_comparison=True)(literal(after)))
    statement = (
        select(
            user.c.id,
            user.c.email,
            user.c.created_at,
            user.c.email_verified_at,
            user.c.disabled_at,
            key.label("email_key"),
        )
        .where(*conditions)
        # The index's own order (byte order), so the scan needs no sort.
        .order_by(text('lower("user".email) USING ~<~'))
        .limit(limit)
    )
    return [UserMatch(**row._mapping) for row in await conn.execute(statement)]
