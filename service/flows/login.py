"""Password login: throttled, timing-safe for unknown emails, capped sessions per user."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import users
from service.domain.clock import Clock
from service.domain.errors import (
    AccountDisabled,
    EmailNotVerified,
    InvalidCredentials,
    RateLimited,
)
from service.domain.events import EventKind
from service.domain.observer import AuthObserver
from service.domain.passwords import PasswordHasher
from service.domain.views import ClientInfo, IssuedTokens, UserView
from service.flows import audit
from service.flows.issuing import TokenIssuer
from service.flows.throttle import LoginThrottle


class Login:
    def __init__(
        self,
        engine: AsyncEngine,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        throttle: LoginThrottle,
        clock: Clock,
        observer: AuthObserver,
        require_verified_email: bool = False,
    ) -> None:
        self._require_verified_email = require_verified_email
        self._engine = engine
        self._hasher = hasher
        self._issuer = issuer
        self._throttle = throttle
        self._clock = clock
        self._observer = observer

    async def login(
        self,
        email: str,
        password: str,
        client: ClientInfo,
        device_name: str | None = None,
        platform: str | None = None,
    ) -> IssuedTokens:
        """A new session for the right password.

        Raises ServiceUnavailable when the bcrypt queue is full, RateLimited when the account or
        the IP is throttled, InvalidCredentials for an unknown email or a wrong password (the
        same work on both paths), AccountDisabled after a right password to a disabled account,
        EmailNotVerified after a right password to an unverified one when
        AUTH_REQUIRE_VERIFIED_EMAIL is on (no session either way).
        """
        # Under a login flood, refuse before the throttle and user lookups cost a round trip.
        self._hasher.ensure_capacity()
        throttle_keys = self._throttle.keys(email, client)
        # In a transaction, though they are two plain reads: with PgBouncer in transaction mode
        # SQLAlchemy's prepare and execute must reach the same server connection.
        async with self._engine.connect() as conn:
            try:
                await self._throttle.check(conn, throttle_keys)
            except RateLimited:
                # Not audited: a throttled attempt writes nothing, so floods cost no writes.
                self._observer.on_login("throttled", None)
                raise
            user = await users.find_user_by_email(conn, email)
        # The connection is back in the pool before bcrypt runs.
        form = None
        # An account with no password (made by an identity provider) gets the same work and
        # answer as an unknown email, until a password reset sets one.
        if user is None or user.password_hash is None:
            await self._hasher.verify_nothing(password)
        else:
            form = await self._hasher.verify_form(password, user.password_hash, f"user {user.id}")
        verified = form is not None
        now = self._clock()
        user_id = None if user is None else user.id
        if not verified or user is None:
            # Known and unknown emails do the same writes, so timing tells nothing either.
            async with self._engine.begin() as conn:
                await self._throttle.record_failure(conn, throttle_keys, now)
                await audit.record(
                    conn,
                    EventKind.LOGIN_FAILED,
                    now,
                    user_id,
                    reason="invalid_credentials",
                    client=client,
                )
            self._observer.on_login("failure", user_id)
            raise InvalidCredentials()
        if user.disabled_at is not None:
            async with self._engine.begin() as conn:
                await audit.record(
                    conn,
                    EventKind.LOGIN_FAILED,
                    now,
                    user.id,
                    reason="account_disabled",
                    client=client,
                )
            self._observer.on_login("disabled", user.id)
            raise AccountDisabled()
        if self._require_verified_email and user.email_verified_at is None:
            async with self._engine.begin() as conn:
                await audit.record(
                    conn,
                    EventKind.LOGIN_FAILED,
                    now,
                    user.id,
                    reason="email_not_verified",
                    client=client,
                )
            self._observer.on_login("unverified", user.id)
            raise EmailNotVerified()
        # An imported hash, one of a lower cost, or one of the password as typed rather than its
        # NFC form (made before the rule) is replaced now that the password is known; bcrypt
        # runs before the transaction so that no row lock waits on it.
        upgraded = None
        if user.password_hash is not None and (
            form == "raw" or self._hasher.needs_rehash(user.password_hash)
        ):
            upgraded = await self._hasher.hash(password)
        async with self._engine.begin() as conn:
            # Locking the user serializes its logins, so the session cap holds under races.
            locked = await users.lock_user(conn, user.id)
            if locked is None:
                self._observer.on_login("failure", None)
                raise InvalidCredentials()  # deleted between the check and now
            # Not over a password changed meanwhile: the newer password wins.
            if upgraded is not None and locked.password_hash == user.password_hash:
                await users.set_password_hash(conn, user.id, upgraded, now)
            await self._throttle.clear_account(conn, throttle_keys)
            view = UserView(
                id=user.id,
                email=user.email,
                created_at=user.created_at,
                email_verified=user.email_verified_at is not None,
            )
            tokens = await self._issuer.start_session(
                conn, view, client, device_name, platform, now
            )
            await audit.record(
                conn, EventKind.LOGIN, now, user.id, [tokens.session_id], client=client
            )
        self._observer.on_login("success", user.id)
        return tokens
