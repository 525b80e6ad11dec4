"""The use cases: register, login, refresh, logout, sessions, password, account and admin.

Each use case owns its transaction (engine.begin()), and knows nothing of HTTP. Password hashing
happens outside any transaction so that no database connection waits on bcrypt.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db import queries
from service.db.batching import Batcher
from service.domain.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidGrant,
    InvalidToken,
    NotFound,
    RateLimited,
    TokenReused,
    WrongPassword,
)
from service.domain.observer import AuthObserver, RefreshOutcome
from service.domain.passwords import PasswordHasher
from service.domain.tokens import AccessClaims, AccessTokens, RefreshToken

Clock = Callable[[], datetime]
LogoutScope = Literal["local", "others", "global"]
IP_LIMIT_FACTOR = 10


class EventKind(StrEnum):
    """Kinds of audit events (the auth_event table; README "Audit trail" says what each records)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    REFRESH_REUSE_DETECTED = "refresh_reuse_detected"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name, not a password)
    ACCOUNT_DELETED = "account_deleted"
    ADMIN_SESSIONS_REVOKED = "admin_sessions_revoked"
    ADMIN_DISABLED = "admin_disabled"
    ADMIN_ENABLED = "admin_enabled"


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the web layer knows about the caller's device and network."""

    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    id: uuid.UUID
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    user: UserView


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a protected route: a live session of an enabled user."""

    user: UserView
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class EventView:
    id: uuid.UUID
    kind: str
    reason: str | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    created_at: datetime


EventPosition = tuple[datetime, uuid.UUID]


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventView]
    # Where the next page starts (the last event's (created_at, id)); None on the last page.
    next: EventPosition | None


@dataclass(frozen=True, slots=True)
class SessionView:
    id: uuid.UUID
    device_name: str | None
    platform: str | None
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(0, math.floor((moment - now).total_seconds()))


def _user_view(row: Any) -> UserView:
    return UserView(id=row.id, email=row.email, created_at=row.created_at)


# A rotation batch's answer to one refresh: the locked row, and the time the batch ran at.
_Rotated = tuple[queries.Rotation, datetime]


async def _read_sessions(
    conn: AsyncConnection, asks: Mapping[uuid.UUID, None]
) -> dict[uuid.UUID, queries.SessionWithUser]:
    return await queries.find_sessions_with_users(conn, list(asks))


def _locked_user(row: Any) -> UserView:
    """The user columns of a `queries.lock_refresh_token` row."""
    return UserView(id=row.user_id, email=row.email, created_at=row.user_created_at)


class Auth:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        access_tokens: AccessTokens,
        hasher: PasswordHasher,
        clock: Clock = system_clock,
        observer: AuthObserver | None = None,
    ) -> None:
        self._engine = engine
        # Single statements that need no transaction around them (the refresh fast path, the
        # session lookup of protected routes): no BEGIN and ROLLBACK/COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The two statements of the hot paths, each shared by the requests of the moment.
        self._session_reads: Batcher[uuid.UUID, None, queries.SessionWithUser] = Batcher(
            self._autocommit, _read_sessions
        )
        self._rotations: Batcher[uuid.UUID, queries.RotationAsk, _Rotated] = Batcher(
            self._autocommit, self._rotate_batch
        )
        self._settings = settings
        self._access_tokens = access_tokens
        self._hasher = hasher
        self._clock = clock
        self._observer = observer or AuthObserver()
        self._idle = timedelta(seconds=settings.session_idle_ttl)

    # --- accounts ----------------------------------------------------------------------------

    async def register(self, email: str, password: str) -> UserView:
        password_hash = await self._hasher.hash(password)
        now = self._clock()
        user_id = uuid.uuid4()
        async with self._engine.begin() as conn:
            if not await queries.insert_user(conn, user_id, email, password_hash, now):
                raise EmailTaken()
        return UserView(id=user_id, email=email, created_at=now)

    async def login(
        self,
        email: str,
        password: str,
        client: ClientInfo,
        device_name: str | None = None,
        platform: str | None = None,
    ) -> IssuedTokens:
        # Under a login flood, refuse before the throttle and user lookups cost a round trip.
        self._hasher.ensure_capacity()
        throttle_keys = self._throttle_keys(email, client)
        # In a transaction, though they are two plain reads: with PgBouncer in transaction mode
        # SQLAlchemy's prepare and execute must reach the same server connection.
        async with self._engine.connect() as conn:
            try:
                await self._check_throttle(conn, throttle_keys)
            except RateLimited:
                # Not audited: a throttled attempt writes nothing, so floods cost no writes.
                self._observer.login("throttled", None)
                raise
            user = await queries.find_user_by_email(conn, email)
        # The connection is back in the pool before bcrypt runs.
        if user is None:
            await self._hasher.verify_nothing(password)
            verified = False
        else:
            verified = await self._hasher.verify(password, user.password_hash, f"user {user.id}")
        now = self._clock()
        user_id = None if user is None else user.id
        if not verified or user is None:
            # Known and unknown emails do the same writes, so timing tells nothing either.
            async with self._engine.begin() as conn:
                for kind, key in throttle_keys:
                    await queries.record_failure(conn, kind, key, now, self._settings.login_window)
                await self._audit(
                    conn,
                    EventKind.LOGIN_FAILED,
                    now,
                    user_id,
                    reason="invalid_credentials",
                    client=client,
                )
            self._observer.login("failure", user_id)
            raise InvalidCredentials()
        if user.disabled_at is not None:
            async with self._engine.begin() as conn:
                await self._audit(
                    conn,
                    EventKind.LOGIN_FAILED,
                    now,
                    user.id,
                    reason="account_disabled",
                    client=client,
                )
            self._observer.login("disabled", user.id)
            raise AccountDisabled()
        # An imported hash, or one of a lower cost, is replaced now that the password is known;
        # bcrypt runs before the transaction so that no row lock waits on it.
        upgraded = None
        if self._hasher.needs_rehash(user.password_hash):
            upgraded = await self._hasher.hash(password)
        async with self._engine.begin() as conn:
            # Locking the user serializes its logins, so the session cap holds under races.
            locked = await queries.lock_user(conn, user.id)
            if locked is None:
                self._observer.login("failure", None)
                raise InvalidCredentials()  # deleted between the check and now
            # Not over a password changed meanwhile: the newer password wins.
            if upgraded is not None and locked.password_hash == user.password_hash:
                await queries.set_password_hash(conn, user.id, upgraded, now)
            await queries.clear_failures(conn, *throttle_keys[0])
            await self._enforce_session_cap(conn, user.id, now, client)
            tokens = await self._start_session(conn, user, client, device_name, platform, now)
            await self._audit(
                conn, EventKind.LOGIN, now, user.id, [tokens.session_id], client=client
            )
        self._observer.login("success", user.id)
        self._observer.identified(user.id, tokens.session_id)
        return tokens

    async def _audit(
        self,
        conn: AsyncConnection,
        kind: EventKind,
        now: datetime,
        user_id: uuid.UUID | None,
        session_ids: Sequence[uuid.UUID | None] = (None,),
        *,
        reason: str | None = None,
        client: ClientInfo | None = None,
    ) -> None:
        """Record audit events in the caller's transaction: they commit with the change."""
        client = client or ClientInfo()
        await queries.insert_auth_events(
            conn,
            kind=kind,
            now=now,
            user_id=user_id,
            session_ids=session_ids,
            reason=reason,
            ip=client.ip,
            user_agent=client.user_agent,
        )

    async def _revoke(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        client: ClientInfo | None,
        *,
        only: Sequence[uuid.UUID] | None = None,
        keep: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke sessions and record one session_revoked event for each."""
        revoked = await queries.revoke_sessions(conn, user_id, now, reason, only=only, keep=keep)
        await self._audit(
            conn, EventKind.SESSION_REVOKED, now, user_id, revoked, reason=reason, client=client
        )
        return revoked

    def _throttle_keys(self, email: str, client: ClientInfo) -> list[tuple[str, str]]:
        keys = [("account", email.lower())]
        if client.ip is not None:
            keys.append(("ip", client.ip))
        return keys

    async def _check_throttle(self, conn: AsyncConnection, keys: list[tuple[str, str]]) -> None:
        now = self._clock()
        window = timedelta(seconds=self._settings.login_window)
        limits = {"account": self._settings.login_max_failures}
        limits["ip"] = limits["account"] * IP_LIMIT_FACTOR
        retry_after = 0
        for row in await queries.failure_counts(conn, keys):
            window_end = row.window_start + window
            if row.failures >= limits[row.kind] and window_end > now:
                retry_after = max(retry_after, math.ceil((window_end - now).total_seconds()))
        if retry_after:
            raise RateLimited(retry_after)

    async def _enforce_session_cap(
        self, conn: AsyncConnection, user_id: uuid.UUID, now: datetime, client: ClientInfo
    ) -> None:
        live = await queries.live_session_ids_oldest_first(
            conn, user_id, now, self._settings.session_idle_ttl
        )
        excess = len(live) - (self._settings.max_sessions - 1)
        if excess > 0:
            await self._revoke(conn, user_id, now, "session_limit", client, only=live[:excess])

    async def _start_session(
        self,
        conn: AsyncConnection,
        user: Any,
        client: ClientInfo,
        device_name: str | None,
        platform: str | None,
        now: datetime,
    ) -> IssuedTokens:
        session_id = uuid.uuid4()
        session_end = now + timedelta(seconds=self._settings.session_max_ttl)
        await queries.insert_session(
            conn,
            session_id=session_id,
            user_id=user.id,
            device_name=device_name,
            platform=platform,
            user_agent=client.user_agent,
            ip=client.ip,
            now=now,
            expires_at=session_end,
        )
        token = RefreshToken.new()
        token_end = min(now + self._idle, session_end)
        await queries.insert_refresh_token(
            conn,
            token_id=token.id,
            session_id=session_id,
            parent_id=None,
            verifier=token.verifier,
            now=now,
            expires_at=token_end,
        )
        return self._issue(_user_view(user), session_id, token, token_end, session_end, now)

    def _issue(
        self,
        user: UserView,
        session_id: uuid.UUID,
        refresh_token: RefreshToken,
        refresh_expires_at: datetime,
        session_end: datetime,
        now: datetime,
    ) -> IssuedTokens:
        # An access token never outlives its session.
        access_end = min(now + timedelta(seconds=self._settings.access_ttl), session_end)
        return IssuedTokens(
            access_token=self._access_tokens.issue(user.id, session_id, now, access_end),
            expires_in=_seconds_until(access_end, now),
            refresh_token=refresh_token.encode(),
            refresh_expires_in=_seconds_until(refresh_expires_at, now),
            session_id=session_id,
            user=user,
        )

    # --- refresh -----------------------------------------------------------------------------

    async def refresh(self, raw_token: str | None, client: ClientInfo) -> IssuedTokens:
        try:
            tokens, outcome = await self._refresh(raw_token, client)
        except InvalidGrant:
            self._observer.refresh("invalid", None, None)
            raise
        except TokenReused as exc:
            self._observer.refresh("reuse_detected", exc.user_id, exc.session_id)
            if exc.user_id is not None:
                self._observer.identified(exc.user_id, exc.session_id)
            raise
        self._observer.refresh(outcome, tokens.user.id, tokens.session_id)
        self._observer.identified(tokens.user.id, tokens.session_id)
        return tokens

    async def _refresh(
        self, raw_token: str | None, client: ClientInfo
    ) -> tuple[IssuedTokens, RefreshOutcome]:
        presented = RefreshToken.parse(raw_token) if raw_token is not None else None
        if presented is None:
            raise InvalidGrant()
        # The common case, a live token presented once: one statement, shared with the other
        # refreshes of the moment (service/db/batching.py).
        child = presented.child(uuid.uuid4())
        ask = queries.RotationAsk(
            presented.id, presented.verifier, child.id, child.verifier, client.user_agent, client.ip
        )
        answer = await self._rotations.ask(presented.id, ask)
        if answer is None:
            raise InvalidGrant()
        row, now = answer
        if row.child_expires_at is not None:
            tokens = self._issue(
                _locked_user(row),
                row.session_id,
                child,
                row.child_expires_at,
                row.session_expires_at,
                now,
            )
            return tokens, "rotated"
        # Not rotated: a spent token (grace retry or reuse), or one that fails a check. The
        # transaction below decides which, under the same row locks.
        return await self._refresh_locked(presented, client)

    async def _rotate_batch(
        self, conn: AsyncConnection, asks: Mapping[uuid.UUID, queries.RotationAsk]
    ) -> dict[uuid.UUID, _Rotated]:
        now = self._clock()
        rows = await queries.rotate_refresh_tokens(
            conn, list(asks.values()), now=now, idle_ttl=self._idle
        )
        return {token_id: (row, now) for token_id, row in rows.items()}

    async def _refresh_locked(
        self, presented: RefreshToken, client: ClientInfo
    ) -> tuple[IssuedTokens, RefreshOutcome]:
        async with self._engine.begin() as conn:
            now = self._clock()
            row = await queries.lock_refresh_token(conn, presented.id)
            if row is None or not presented.matches(row.verifier):
                raise InvalidGrant()
            if row.disabled_at is not None or not self._session_live(
                row.revoked_at, row.session_expires_at, row.last_used_at, now
            ):
                raise InvalidGrant()
            if row.spent_at is None:
                if row.expires_at <= now:
                    raise InvalidGrant()
                return await self._rotate(conn, presented, row, client, now), "rotated"
            retry = await self._grace_retry(conn, presented, row, now)
            if retry is not None:
                return retry, "grace_retry"
            # Theft: revoke the whole session, commit that (and its audit), then refuse.
            await queries.revoke_session(conn, row.session_id, now, "token_reused")
            sessions = [row.session_id]
            await self._audit(
                conn, EventKind.REFRESH_REUSE_DETECTED, now, row.user_id, sessions, client=client
            )
            await self._audit(
                conn,
                EventKind.SESSION_REVOKED,
                now,
                row.user_id,
                sessions,
                reason="token_reused",
                client=client,
            )
        raise TokenReused(row.user_id, row.session_id)

    async def _rotate(
        self,
        conn: AsyncConnection,
        presented: RefreshToken,
        row: Any,
        client: ClientInfo,
        now: datetime,
    ) -> IssuedTokens:
        child = presented.child(uuid.uuid4())
        child_end = min(now + self._idle, row.session_expires_at)
        await queries.spend_refresh_token(conn, presented.id, now)
        await queries.insert_refresh_token(
            conn,
            token_id=child.id,
            session_id=row.session_id,
            parent_id=presented.id,
            verifier=child.verifier,
            now=now,
            expires_at=child_end,
        )
        await queries.touch_session(conn, row.session_id, now, client.user_agent, client.ip)
        return self._issue(
            _locked_user(row), row.session_id, child, child_end, row.session_expires_at, now
        )

    async def _grace_retry(
        self, conn: AsyncConnection, presented: RefreshToken, row: Any, now: datetime
    ) -> IssuedTokens | None:
        """The same child again when `presented` was spent by the session's latest rotation
        less than AUTH_REUSE_GRACE seconds ago; None when this presentation is a reuse."""
        grace = self._settings.reuse_grace
        if grace <= 0 or (now - row.spent_at).total_seconds() > grace:
            return None
        child_row = await queries.find_child(conn, presented.id)
        if child_row is None or child_row.spent_at is not None or child_row.expires_at <= now:
            return None
        child = presented.child(child_row.id)
        return self._issue(
            _locked_user(row),
            row.session_id,
            child,
            child_row.expires_at,
            row.session_expires_at,
            now,
        )

    def _session_live(
        self,
        revoked_at: datetime | None,
        expires_at: datetime,
        last_used_at: datetime,
        now: datetime,
    ) -> bool:
        return revoked_at is None and now < expires_at and now < last_used_at + self._idle

    # --- protected routes --------------------------------------------------------------------

    def verify_access_token(self, token: str | None) -> AccessClaims:
        """Signature, claims and expiry only (no database); raises InvalidToken."""
        if not token:
            raise InvalidToken()
        return self._access_tokens.verify(token, self._clock())

    async def authenticate(self, token: str | None) -> Principal:
        """A valid access token whose session is still live; revocation is immediate."""
        claims = self.verify_access_token(token)
        row = await self._session_reads.ask(claims.session_id, None)
        now = self._clock()
        if (
            row is None
            or row.user_id != claims.user_id
            or row.disabled_at is not None
            or not self._session_live(row.revoked_at, row.expires_at, row.last_used_at, now)
        ):
            raise InvalidToken()
        user = UserView(id=row.user_id, email=row.email, created_at=row.user_created_at)
        self._observer.identified(user.id, row.id)
        return Principal(user=user, session_id=row.id)

    # --- logout ------------------------------------------------------------------------------

    async def logout_with_access_token(
        self, claims: AccessClaims, scope: LogoutScope, client: ClientInfo | None = None
    ) -> None:
        self._observer.identified(claims.user_id, claims.session_id)
        await self._logout(claims.user_id, claims.session_id, scope, client)

    async def logout_with_refresh_token(
        self, raw_token: str | None, scope: LogoutScope, client: ClientInfo | None = None
    ) -> None:
        """Any token ever issued in a session names it, spent or not."""
        presented = RefreshToken.parse(raw_token) if raw_token is not None else None
        if presented is None:
            raise InvalidToken()
        async with self._engine.connect() as conn:
            row = await queries.find_refresh_token_session(conn, presented.id)
        if row is None or not presented.matches(row.verifier):
            raise InvalidToken()
        self._observer.identified(row.user_id, row.session_id)
        await self._logout(row.user_id, row.session_id, scope, client)

    async def _logout(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        scope: LogoutScope,
        client: ClientInfo | None,
    ) -> None:
        async with self._engine.begin() as conn:
            now = self._clock()
            if scope == "local":
                if await queries.revoke_session(conn, session_id, now, "logout"):
                    sessions = [session_id]
                    await self._audit(
                        conn,
                        EventKind.SESSION_REVOKED,
                        now,
                        user_id,
                        sessions,
                        reason="logout",
                        client=client,
                    )
                return
            # Ending other sessions takes a live session: an ended session's leftover token
            # must not be able to log its user out everywhere.
            row = await queries.find_session_with_user(conn, session_id, user_id)
            if row is None or not self._session_live(
                row.revoked_at, row.expires_at, row.last_used_at, now
            ):
                return
            keep = session_id if scope == "others" else None
            await self._revoke(conn, user_id, now, f"logout_{scope}", client, keep=keep)

    # --- sessions ----------------------------------------------------------------------------

    async def list_sessions(
        self, user_id: uuid.UUID, current: uuid.UUID | None = None
    ) -> list[SessionView]:
        now = self._clock()
        async with self._engine.connect() as conn:
            rows = await queries.list_live_sessions(
                conn, user_id, now, self._settings.session_idle_ttl
            )
        return [
            SessionView(
                id=row.id,
                device_name=row.device_name,
                platform=row.platform,
                user_agent=row.user_agent,
                ip=None if row.ip is None else str(row.ip),
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                expires_at=min(row.expires_at, row.last_used_at + self._idle),
                current=row.id == current,
            )
            for row in rows
        ]

    async def end_session(
        self, principal: Principal, session_id: str, client: ClientInfo | None = None
    ) -> None:
        """End one of the caller's live sessions; anything else is NotFound (no oracle)."""
        try:
            target = uuid.UUID(session_id)
        except ValueError:
            raise NotFound() from None
        async with self._engine.begin() as conn:
            now = self._clock()
            live = await queries.live_session_ids_oldest_first(
                conn, principal.user.id, now, self._settings.session_idle_ttl
            )
            if target not in live:
                raise NotFound()
            await self._revoke(conn, principal.user.id, now, "user", client, only=[target])

    # --- password and account ----------------------------------------------------------------

    async def change_password(
        self, principal: Principal, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        await self._reauthenticate(principal, current)
        new_hash = await self._hasher.hash(new)
        user_id, session_id = principal.user.id, principal.session_id
        async with self._engine.begin() as conn:
            now = self._clock()
            if await queries.lock_user(conn, user_id) is None:
                raise InvalidToken()  # deleted meanwhile
            await queries.set_password_hash(conn, user_id, new_hash, now)
            await self._audit(
                conn, EventKind.PASSWORD_CHANGED, now, user_id, [session_id], client=client
            )
            await self._revoke(conn, user_id, now, "password_changed", client, keep=session_id)

    async def delete_account(
        self, principal: Principal, password: str, client: ClientInfo | None = None
    ) -> None:
        await self._reauthenticate(principal, password)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await queries.lock_user(conn, principal.user.id) is None:
                return  # a concurrent deletion won
            await queries.delete_user(conn, principal.user.id)
            # The events stay until pruned (abuse investigations), no longer tied to the account.
            await queries.detach_auth_events(conn, principal.user.id)
            sessions = [principal.session_id]
            await self._audit(conn, EventKind.ACCOUNT_DELETED, now, None, sessions, client=client)

    async def _reauthenticate(self, principal: Principal, password: str) -> None:
        async with self._engine.connect() as conn:
            user = await queries.find_user(conn, principal.user.id)
        if user is None:
            raise InvalidToken()
        if not await self._hasher.verify(password, user.password_hash, f"user {user.id}"):
            raise WrongPassword()

    # --- admin -------------------------------------------------------------------------------

    async def admin_list_sessions(self, user_id: str) -> list[SessionView]:
        target = await self._existing_user(user_id)
        return await self.list_sessions(target)

    async def admin_revoke_sessions(self, user_id: str, client: ClientInfo | None = None) -> None:
        target = _user_id(user_id)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await queries.lock_user(conn, target) is None:
                raise NotFound()
            await self._audit(conn, EventKind.ADMIN_SESSIONS_REVOKED, now, target, client=client)
            await self._revoke(conn, target, now, "admin", client)
        self._observer.admin_action("revoke_sessions", target)

    async def admin_set_disabled(
        self, user_id: str, disabled: bool, client: ClientInfo | None = None
    ) -> None:
        target = _user_id(user_id)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await queries.lock_user(conn, target) is None:
                raise NotFound()
            await queries.set_disabled(conn, target, now if disabled else None, now)
            kind = EventKind.ADMIN_DISABLED if disabled else EventKind.ADMIN_ENABLED
            await self._audit(conn, kind, now, target, client=client)
            if disabled:
                await self._revoke(conn, target, now, "account_disabled", client)
        self._observer.admin_action("disable" if disabled else "enable", target)

    async def _existing_user(self, user_id: str) -> uuid.UUID:
        target = _user_id(user_id)
        async with self._engine.connect() as conn:
            if await queries.find_user(conn, target) is None:
                raise NotFound()
        return target

    # --- audit trail -------------------------------------------------------------------------

    async def list_events(
        self, user_id: uuid.UUID, limit: int, after: EventPosition | None = None
    ) -> EventPage:
        """The user's audit events, newest first, starting after `after` (a page's `next`)."""
        async with self._engine.connect() as conn:
            rows = await queries.list_auth_events(conn, user_id, limit + 1, after)
        events = [
            EventView(
                id=row.id,
                kind=row.kind,
                reason=row.reason,
                session_id=row.session_id,
                ip=None if row.ip is None else str(row.ip),
                user_agent=row.user_agent,
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        return EventPage(events, (events[-1].created_at, events[-1].id) if more else None)

    async def admin_list_events(
        self, user_id: str, limit: int, after: EventPosition | None = None
    ) -> EventPage:
        return await self.list_events(await self._existing_user(user_id), limit, after)


def _user_id(raw: str) -> uuid.UUID:
    """A user id from a URL; NotFound for anything that is not a UUID (no oracle, no 500)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None
