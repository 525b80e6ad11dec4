"""The use cases: register, login, refresh, logout, sessions, password, account and admin.

Each use case owns its transaction (engine.begin()), and knows nothing of HTTP. Password hashing
happens outside any transaction so that no database connection waits on bcrypt.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db import queries
from service.errors import (
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
from service.passwords import PasswordHasher
from service.tokens import AccessClaims, AccessTokens, RefreshToken

Clock = Callable[[], datetime]
LogoutScope = Literal["local", "others", "global"]
IP_LIMIT_FACTOR = 10


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
    ) -> None:
        self._engine = engine
        # Single statements that need no transaction around them (the refresh fast path, the
        # session lookup of protected routes): no BEGIN and ROLLBACK/COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._settings = settings
        self._access_tokens = access_tokens
        self._hasher = hasher
        self._clock = clock
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
        async with self._engine.connect() as conn:
            await self._check_throttle(conn, throttle_keys)
            user = await queries.find_user_by_email(conn, email)
        # The connection is back in the pool before bcrypt runs.
        if user is None:
            await self._hasher.verify_nothing(password)
            verified = False
        else:
            verified = await self._hasher.verify(password, user.password_hash)
        now = self._clock()
        if not verified or user is None:
            async with self._engine.begin() as conn:
                for kind, key in throttle_keys:
                    await queries.record_failure(conn, kind, key, now, self._settings.login_window)
            raise InvalidCredentials()
        if user.disabled_at is not None:
            raise AccountDisabled()
        async with self._engine.begin() as conn:
            # Locking the user serializes its logins, so the session cap holds under races.
            if await queries.lock_user(conn, user.id) is None:
                raise InvalidCredentials()  # deleted between the check and now
            await queries.clear_failures(conn, *throttle_keys[0])
            await self._enforce_session_cap(conn, user.id, now)
            return await self._start_session(conn, user, client, device_name, platform, now)

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
        self, conn: AsyncConnection, user_id: uuid.UUID, now: datetime
    ) -> None:
        live = await queries.live_session_ids_oldest_first(
            conn, user_id, now, self._settings.session_idle_ttl
        )
        excess = len(live) - (self._settings.max_sessions - 1)
        if excess > 0:
            await queries.revoke_sessions(conn, user_id, now, "session_limit", only=live[:excess])

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
        presented = RefreshToken.parse(raw_token) if raw_token is not None else None
        if presented is None:
            raise InvalidGrant()
        # The common case, a live token presented once, in one statement (one round trip).
        now = self._clock()
        child = presented.child(uuid.uuid4())
        async with self._autocommit.connect() as conn:
            row = await queries.rotate_refresh_token(
                conn,
                token_id=presented.id,
                verifier=presented.verifier,
                child_id=child.id,
                child_verifier=child.verifier,
                now=now,
                idle_ttl=self._idle,
                user_agent=client.user_agent,
                ip=client.ip,
            )
        if row is None:
            raise InvalidGrant()
        if row.child_expires_at is not None:
            return self._issue(
                _locked_user(row),
                row.session_id,
                child,
                row.child_expires_at,
                row.session_expires_at,
                now,
            )
        # Not rotated: a spent token (grace retry or reuse), or one that fails a check. The
        # transaction below decides which, under the same row locks.
        return await self._refresh_locked(presented, client)

    async def _refresh_locked(self, presented: RefreshToken, client: ClientInfo) -> IssuedTokens:
        reused = False
        async with self._engine.begin() as conn:
            now = self._clock()
            row = await queries.lock_refresh_token(conn, presented.id)
            if row is None or not presented.matches(row.verifier):
                raise InvalidGrant()
            if row.disabled_at is not None or not self._session_live(
                row.revoked_at, row.session_expires_at, row.last_used_at, now
            ):
                raise InvalidGrant()
            if row.spent_at is not None:
                retry = await self._grace_retry(conn, presented, row, now)
                if retry is not None:
                    return retry
                # Theft: revoke the whole session, commit that, then refuse.
                await queries.revoke_session(conn, row.session_id, now, "token_reused")
                reused = True
            elif row.expires_at <= now:
                raise InvalidGrant()
            else:
                return await self._rotate(conn, presented, row, client, now)
        assert reused
        raise TokenReused()

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
        async with self._autocommit.connect() as conn:
            row = await queries.find_session_with_user(conn, claims.session_id, claims.user_id)
        now = self._clock()
        if (
            row is None
            or row.disabled_at is not None
            or not self._session_live(row.revoked_at, row.expires_at, row.last_used_at, now)
        ):
            raise InvalidToken()
        user = UserView(id=row.user_id, email=row.email, created_at=row.user_created_at)
        return Principal(user=user, session_id=row.id)

    # --- logout ------------------------------------------------------------------------------

    async def logout_with_access_token(self, claims: AccessClaims, scope: LogoutScope) -> None:
        await self._logout(claims.user_id, claims.session_id, scope)

    async def logout_with_refresh_token(self, raw_token: str | None, scope: LogoutScope) -> None:
        """Any token ever issued in a session names it, spent or not."""
        presented = RefreshToken.parse(raw_token) if raw_token is not None else None
        if presented is None:
            raise InvalidToken()
        async with self._engine.connect() as conn:
            row = await queries.find_refresh_token_session(conn, presented.id)
        if row is None or not presented.matches(row.verifier):
            raise InvalidToken()
        await self._logout(row.user_id, row.session_id, scope)

    async def _logout(self, user_id: uuid.UUID, session_id: uuid.UUID, scope: LogoutScope) -> None:
        async with self._engine.begin() as conn:
            now = self._clock()
            if scope == "local":
                await queries.revoke_session(conn, session_id, now, "logout")
                return
            # Ending other sessions takes a live session: an ended session's leftover token
            # must not be able to log its user out everywhere.
            row = await queries.find_session_with_user(conn, session_id, user_id)
            if row is None or not self._session_live(
                row.revoked_at, row.expires_at, row.last_used_at, now
            ):
                return
            keep = session_id if scope == "others" else None
            await queries.revoke_sessions(conn, user_id, now, f"logout_{scope}", keep=keep)

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

    async def end_session(self, principal: Principal, session_id: str) -> None:
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
            await queries.revoke_sessions(conn, principal.user.id, now, "user", only=[target])

    # --- password and account ----------------------------------------------------------------

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        await self._reauthenticate(principal, current)
        new_hash = await self._hasher.hash(new)
        async with self._engine.begin() as conn:
            now = self._clock()
            await queries.set_password_hash(conn, principal.user.id, new_hash, now)
            await queries.revoke_sessions(
                conn, principal.user.id, now, "password_changed", keep=principal.session_id
            )

    async def delete_account(self, principal: Principal, password: str) -> None:
        await self._reauthenticate(principal, password)
        async with self._engine.begin() as conn:
            await queries.delete_user(conn, principal.user.id)

    async def _reauthenticate(self, principal: Principal, password: str) -> None:
        async with self._engine.connect() as conn:
            user = await queries.find_user(conn, principal.user.id)
        if user is None:
            raise InvalidToken()
        if not await self._hasher.verify(password, user.password_hash):
            raise WrongPassword()

    # --- admin -------------------------------------------------------------------------------

    async def admin_list_sessions(self, user_id: str) -> list[SessionView]:
        target = await self._existing_user(user_id)
        return await self.list_sessions(target)

    async def admin_revoke_sessions(self, user_id: str) -> None:
        target = await self._existing_user(user_id)
        async with self._engine.begin() as conn:
            await queries.revoke_sessions(conn, target, self._clock(), "admin")

    async def admin_set_disabled(self, user_id: str, disabled: bool) -> None:
        target = await self._existing_user(user_id)
        async with self._engine.begin() as conn:
            now = self._clock()
            await queries.set_disabled(conn, target, now if disabled else None, now)
            if disabled:
                await queries.revoke_sessions(conn, target, now, "account_disabled")

    async def _existing_user(self, user_id: str) -> uuid.UUID:
        try:
            target = uuid.UUID(user_id)
        except ValueError:
            raise NotFound() from None
        async with self._engine.connect() as conn:
            if await queries.find_user(conn, target) is None:
                raise NotFound()
        return target
