"""`rotor email-collisions`: accounts that already shared a canonical email when the rule came.

Migration 0007 does not guess which of two look-alike accounts (`ada@example.com` and
`ada@example.com.`, or a fullwidth spelling) is the real one: both stay, flagged, each
reachable by its exact address.
`rotor migrate` lists them; an operator who has found out (by asking the users, by the audit
trail) runs `rotor email-collisions --keep USER_ID`: that account then owns the canonical form,
so every look-alike spelling reaches it, while the others still sign in with their exact address
and cannot be joined by a new look-alike registration.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from itertools import groupby

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from service.db import emails
from service.db.engine import async_url

RESOLVE_COMMAND = "rotor email-collisions --keep USER_ID"


class ResolveError(Exception):
    """The account cannot be made the owner; the message says why."""


async def _report(database_url: str) -> list[str]:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            rows = await emails.colliding_users(conn)
            lines = []
            for form, members in groupby(rows, key=lambda row: row.email_canonical):
                owner = await emails.owner_of(conn, form)
                people = ", ".join(f"{row.id} <{row.email}>" for row in members)
                resolved = f" (owner: {owner})" if owner is not None else ""
                lines.append(f"  {form}{resolved}: {people}")
    finally:
        await engine.dispose()
    if not lines:
        return []
    return [
        "accounts whose emails are one address in canonical form (kept apart; each signs in "
        "with its exact address):",
        *lines,
        f"to give one of them the address and every look-alike of it: {RESOLVE_COMMAND}",
    ]


def report(database_url: str) -> list[str]:
    """Lines describing every collision group and how to resolve it; none when there is none."""
    return asyncio.run(_report(database_url))


async def _keep(database_url: str, user_id: uuid.UUID) -> str:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as conn:
            form = await emails.make_owner(conn, user_id)
            if form is None:
                raise ResolveError(f"user {user_id} is not among the colliding accounts")
    except IntegrityError:
        raise ResolveError(
            f"another account already owns the canonical email of user {user_id}"
        ) from None
    finally:
        await engine.dispose()
    return form


def keep(database_url: str, user_id: uuid.UUID) -> str:
    """Make `user_id` the owner of its canonical email; ResolveError when it cannot be."""
    return asyncio.run(_keep(database_url, user_id))


def run(database_url: str, keep_id: uuid.UUID | None, say: Callable[[str], None]) -> None:
    if keep_id is not None:
        form = keep(database_url, keep_id)
        say(f"user {keep_id} now owns {form} and every look-alike of it")
    for line in report(database_url) or ["no colliding accounts"]:
        say(line)
