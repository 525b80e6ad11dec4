"""The support console: staff sign-in and console sessions, and what staff may look at and do
to a user. Every change is audited with the staff member's id, in the change's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db import console as console_queries
from service.db import events, users
from service.db import staff as staff_queries
from service.domain import console as domain
from service.domain.clock import Clock
from service.domain.codes import Purpose
from service.domain.console import (
    ConsoleCaller,
    ConsoleEvent,
    ConsoleSessionEnded,
    ConsoleSignInFailed,
    StaffForbidden,
    StaffView,
    UserDetail,
    UserSearchPage,
    UserSummary,
)
from service.domain.errors import NotFound
from service.domain.events import EventKind
from service.domain.passwords import PasswordHasher
from service.domain.views import ClientInfo, IdentityView
from service.flows import audit
from service.flows.codes import Codes
from service.flows.sessions import Sessions
from service.flows.throttle import LoginThrottle

# The user's linked identities, when this deployment has them (the identities feature passes
# its query here); None leaves the section out of the user page.
IdentityLister = Callable[[AsyncConnection, uuid.UUID], Awaitable[list[IdentityView]]]
PAGE_SIZE = 25
RECENT_EVENTS = 20
MAX_PREFIX = 320
IDLE = timedelta(seconds=domain.IDLE_SECONDS)
ABSOLUTE = timedelta(seconds=domain.ABSOLUTE_SECONDS)


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


class StaffSignIn:
    """Console sessions: a random token in the cookie, its SHA-256 in console_session."""

    def __init__(
        self, engine: AsyncEngine, hasher: PasswordHasher, throttle: LoginThrottle, clock: Clock
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._throttle = throttle
        self._clock = clock

    async def has_staff(self) -> bool:
        async with self._engine.connect() as conn:
            return await staff_queries.any_staff(conn)

    async def sign_in(self, email: str, password: str, client: ClientInfo) -> str:
        """A new console session's token for the right password.

        Raises ServiceUnavailable when the bcrypt queue is full, RateLimited when the email or
        IP is throttled (as user logins are, with counters of their own), ConsoleSignInFailed
        for an unknown email or a wrong password (the same bcrypt work on both paths).
        """
        self._hasher.ensure_capacity()
        keys = self._throttle.keys(email, client)
        async with self._engine.connect() as conn:
            await self._throttle.check(conn, keys)
            member = await staff_queries.find_staff_by_email(conn, email)
        if member is None:
            await self._hasher.verify_nothing(password)
            verified = False
        else:
            verified = await self._hasher.verify(password, member.password_hash, "a staff member")
        now = self._clock()
        if not verified or member is None:
            async with self._engine.begin() as conn:
                await self._throttle.record_failure(conn, keys, now)
            raise ConsoleSignInFailed()
        token = domain.new_token()
        async with self._engine.begin() as conn:
            await self._throttle.clear_account(conn, keys)
            await staff_queries.delete_ended_console_sessions(conn, member.id, now, IDLE)
            await staff_queries.insert_console_session(
                conn,
                session_id=uuid.uuid4(),
                token_hash=domain.token_hash(token),
                staff_id=member.id,
                ip=client.ip,
                user_agent=client.user_agent,
                now=now,
                expires_at=now + ABSOLUTE,
            )
        return token

    async def authenticate(self, token: str | None) -> ConsoleCaller:
        """The staff member of a live console session (and the session's idle end pushed back);
        raises ConsoleSessionEnded for a missing, unknown, idle or expired one."""
        if not token:
            raise ConsoleSessionEnded()
        async with self._engine.begin() as conn:
            row = await staff_queries.touch_console_session(
                conn, domain.token_hash(token), self._clock(), IDLE
            )
        if row is None:
            raise ConsoleSessionEnded()
        member = StaffView(row.staff_id, row.email, row.role, row.created_at)
        return ConsoleCaller(staff=member, session_id=row.id)

    async def sign_out(self, token: str) -> None:
        async with self._engine.begin() as conn:
            await staff_queries.delete_console_session(conn, domain.token_hash(token))


class SupportDesk:
    """What a signed-in staff member may read and change."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: Sessions,
        clock: Clock,
        codes: Codes,
        identities: IdentityLister | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._clock = clock
        self._codes = codes
        self._identities = identities

    async def search(self, prefix: str, after: str | None = None) -> UserSearchPage:
        """Users whose email starts with `prefix` (case-insensitively), a page at a time."""
        # No email holds a control character, NUL or lone surrogate (PostgreSQL refuses the
        # last two in text): dropping them keeps any typed query a plain search.
        prefix = _printable(prefix.strip())[:MAX_PREFIX]
        after = None if after is None else _printable(after)[:MAX_PREFIX]
        async with self._engine.connect() as conn:
            rows = await console_queries.search_users_by_prefix(conn, prefix, after, PAGE_SIZE + 1)
        users = [_summary(row) for row in rows[:PAGE_SIZE]]
        after_last = rows[PAGE_SIZE - 1].email_key if len(rows) > PAGE_SIZE else None
        return UserSearchPage(users=users, next_after=after_last)

    async def user_detail(self, user_id: str) -> UserDetail:
        """The user's state, identities (when offered), live sessions and recent events;
        raises NotFound for an unknown or malformed id."""
        target = _uuid(user_id)
        async with self._engine.connect() as conn:
            row = await users.find_user(conn, target)
            if row is None:
                raise NotFound()
            identities = None
            if self._identities is not None:
                identities = await self._identities(conn, target)
            event_rows = await events.list_auth_events(conn, target, RECENT_EVENTS)
            names = await staff_queries.staff_emails(
                conn, list({r.staff_id for r in event_rows if r.staff_id is not None})
            )
        views = [
            ConsoleEvent(
                kind=r.kind,
                reason=r.reason,
                session_id=r.session_id,
                ip=r.ip,
                user_agent=r.user_agent,
                created_at=r.created_at,
                staff=None if r.staff_id is None else names.get(r.staff_id, str(r.staff_id)),
            )
            for r in event_rows
        ]
        sessions = await self._sessions.list_live(target)
        return UserDetail(_summary(row), identities, sessions, views)

    async def revoke_session(
        self, caller: ConsoleCaller, user_id: str, session_id: str, client: ClientInfo
    ) -> None:
        """End one session of the user; raises NotFound when it is not the user's (or the
        user or id is unknown). Ending an already-ended session changes nothing."""
        target, session = _uuid(user_id), _uuid(session_id)
        async with self._engine.begin() as conn:
            await self._locked_user(conn, target)
            now = self._clock()
            await audit.revoke(
                conn, target, now, "staff", client, only=[session], staff_id=caller.staff.id
            )

    async def revoke_all(self, caller: ConsoleCaller, user_id: str, client: ClientInfo) -> None:
        """End every session of the user; raises NotFound for an unknown user."""
        target = _uuid(user_id)
        async with self._engine.begin() as conn:
            await self._locked_user(conn, target)
            now = self._clock()
            await audit.record(
                conn,
                EventKind.STAFF_SESSIONS_REVOKED,
                now,
                target,
                client=client,
                staff_id=caller.staff.id,
            )
            await audit.revoke(conn, target, now, "staff", client, staff_id=caller.staff.id)

    async def send_password_reset(
        self, caller: ConsoleCaller, user_id: str, client: ClientInfo
    ) -> None:
        """Queue a password reset message with a new code to the user's address (killing the
        earlier reset codes), in one transaction with its audit event; raises NotFound for an
        unknown user. Any role may: the code goes to the user, never to the staff member."""
        target = _uuid(user_id)
        async with self._engine.begin() as conn:
            user = await users.lock_user(conn, target)
            if user is None:
                raise NotFound()
            now = self._clock()
            await self._codes.issue(conn, target, user.email, Purpose.PASSWORD_RESET, now)
            await audit.record(
                conn,
                EventKind.STAFF_PASSWORD_RESET_SENT,
                now,
                target,
                client=client,
                staff_id=caller.staff.id,
            )

    async def set_disabled(
        self, caller: ConsoleCaller, user_id: str, disabled: bool, client: ClientInfo
    ) -> None:
        """Disable (ending every session at once) or enable the account. Raises
        StaffForbidden unless the caller is an admin, NotFound for an unknown user."""
        if not caller.is_admin:
            raise StaffForbidden()
        target = _uuid(user_id)
        async with self._engine.begin() as conn:
            await self._locked_user(conn, target)
            now = self._clock()
            await users.set_disabled(conn, target, now if disabled else None, now)
            kind = EventKind.STAFF_DISABLED if disabled else EventKind.STAFF_ENABLED
            await audit.record(conn, kind, now, target, client=client, staff_id=caller.staff.id)
            if disabled:
                await audit.revoke(
                    conn, target, now, "account_disabled", client, staff_id=caller.staff.id
                )

    @staticmethod
    async def _locked_user(conn: AsyncConnection, target: uuid.UUID) -> None:
        if await users.lock_user(conn, target) is None:
            raise NotFound()


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())


def _summary(row: console_queries.UserMatch | users.UserRow) -> UserSummary:
    return UserSummary(
        id=row.id,
        email=row.email,
        email_verified=row.email_verified_at is not None,
        disabled=row.disabled_at is not None,
        created_at=row.created_at,
    )
