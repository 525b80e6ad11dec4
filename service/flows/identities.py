"""Sign-in with an identity provider's ID token, and the caller's linked identities.

The linking rules (docs/identity-providers.md says why each holds):
- a known (provider, sub) signs its user in;
- an unknown one whose token carries a verified email links to the account with that email if
  that account's address is verified, is refused with IdentityConflict if it is not (nobody
  proved that address, so it could be an attacker's pre-registered account), and creates a
  verified account with no password when there is none;
- an unknown one without a verified email creates nothing: EmailNotVerified.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db import identities as db
from service.db import users
from service.domain import id_tokens
from service.domain.clock import Clock
from service.domain.errors import (
    AccountDisabled,
    EmailNotVerified,
    IdentityConflict,
    InvalidToken,
    LastLoginMethod,
    NotFound,
    ValidationFailed,
)
from service.domain.events import EventKind
from service.domain.id_tokens import IdTokenRejected, KeySource, VerifiedIdToken
from service.domain.observer import AuthObserver
from service.domain.views import ClientInfo, IdentityView, IssuedTokens, Principal, UserView
from service.flows import audit
from service.flows.issuing import TokenIssuer
from service.settings.oidc import OidcSettings, Provider


class _Raced(Exception):
    """A concurrent sign-in created the same identity or account first: try once more."""


@dataclass(frozen=True, slots=True)
class _Disabled:
    user_id: uuid.UUID


def _view(row: db.IdentityRow) -> IdentityView:
    return IdentityView(
        provider=row.provider, subject=row.subject, email=row.email, created_at=row.created_at
    )


async def identity_views(conn: AsyncConnection, user_id: uuid.UUID) -> list[IdentityView]:
    """The user's identities, oldest first, on the caller's connection (the support console
    shows them on its user page)."""
    return [_view(row) for row in await db.list_identities(conn, user_id)]


def _user_view(row: users.UserRow) -> UserView:
    return UserView(
        id=row.id,
        email=row.email,
        created_at=row.created_at,
        email_verified=row.email_verified_at is not None,
    )


class Identities:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: OidcSettings,
        keys: KeySource,
        issuer: TokenIssuer,
        clock: Clock,
        observer: AuthObserver,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._observer = observer

    def _provider(self, name: str) -> Provider:
        provider = self._settings.get(name)
        if provider is None:
            raise ValidationFailed({"provider": "is not a configured identity provider"})
        return provider

    async def verify(self, provider: Provider, token: str, nonce: str | None) -> VerifiedIdToken:
        """The token's verified claims. Raises IdTokenRejected (401 invalid_credentials) for any
        failed check, ServiceUnavailable when the provider's keys cannot be fetched in time."""
        try:
            header = id_tokens.read_header(token)
            key = await self._keys.key(provider.name, provider.issuer, header.kid)
            if key is None:
                raise IdTokenRejected("unknown_key")
            return id_tokens.verify(
                token,
                key,
                issuer=provider.issuer,
                client_ids=provider.client_ids,
                nonce=nonce,
                now=self._clock(),
            )
        except IdTokenRejected as exc:
            self._observer.on_id_token_rejected(provider.name, exc.check)
            raise

    async def _spend(
        self, conn: AsyncConnection, provider: Provider, token: VerifiedIdToken
    ) -> None:
        if not await db.spend_id_token(conn, token.digest, token.expires_at):
            self._observer.on_id_token_rejected(provider.name, "replayed")
            raise IdTokenRejected("replayed")

    async def sign_in(
        self,
        provider_name: str,
        token: str,
        nonce: str | None,
        client: ClientInfo,
        device_name: str | None = None,
        platform: str | None = None,
    ) -> IssuedTokens:
        """A new session for the token's identity, by the linking rules above.

        Raises ValidationFailed (422) for an unknown provider, IdTokenRejected (401) for a bad or
        replayed token, ServiceUnavailable when the provider's keys cannot be had, EmailNotVerified,
        IdentityConflict, AccountDisabled.
        """
        provider = self._provider(provider_name)
        verified = await self.verify(provider, token, nonce)
        for attempt in (1, 2):
            try:
                async with self._engine.begin() as conn:
                    outcome = await self._sign_in(
                        conn, provider, verified, client, device_name, platform
                    )
                break
            except _Raced:
                if attempt == 2:
                    raise IdentityConflict() from None
        if isinstance(outcome, _Disabled):
            self._observer.on_login("disabled", outcome.user_id)
            raise AccountDisabled()
        self._observer.on_login("success", outcome.user.id)
        return outcome

    async def _sign_in(
        self,
        conn: AsyncConnection,
        provider: Provider,
        token: VerifiedIdToken,
        client: ClientInfo,
        device_name: str | None,
        platform: str | None,
    ) -> IssuedTokens | _Disabled:
        now = self._clock()
        await self._spend(conn, provider, token)
        known = await db.find_identity(conn, provider.name, token.subject)
        if known is not None:
            user = await users.lock_user(conn, known.user_id)
            if user is None:
                raise _Raced()  # the account is being deleted
            await db.touch_identity(conn, provider.name, token.subject, token.email, now)
        else:
            if token.email is None or not token.email_verified:
                raise EmailNotVerified(
                    "The identity provider does not vouch for an email address; "
                    "nothing was created."
                )
            user = await users.lock_user_by_email(conn, token.email)
            if user is None:
                user_id = uuid.uuid4()
                if not await db.insert_passwordless_user(conn, user_id, token.email, now):
                    raise _Raced()
                user = await users.lock_user(conn, user_id)
                assert user is not None  # inserted by this transaction
            elif user.email_verified_at is None:
                raise IdentityConflict()
            if user.disabled_at is None:
                await self._link(conn, provider, token, user.id, client)
        if user.disabled_at is not None:
            # Committed with the spent token: the attempt is on the account's record.
            await audit.record(
                conn, EventKind.LOGIN_FAILED, now, user.id, reason="account_disabled", client=client
            )
            return _Disabled(user.id)
        tokens = await self._issuer.start_session(
            conn, _user_view(user), client, device_name, platform, now
        )
        await audit.record(
            conn,
            EventKind.LOGIN,
            now,
            user.id,
            [tokens.session_id],
            reason=f"idtoken:{provider.name}",
            client=client,
        )
        return tokens

    async def _link(
        self,
        conn: AsyncConnection,
        provider: Provider,
        token: VerifiedIdToken,
        user_id: uuid.UUID,
        client: ClientInfo | None,
    ) -> None:
        now = self._clock()
        inserted = await db.insert_identity(
            conn,
            provider=provider.name,
            subject=token.subject,
            user_id=user_id,
            email=token.email,
            now=now,
        )
        if not inserted:
            raise _Raced()
        await audit.record(
            conn, EventKind.IDENTITY_LINKED, now, user_id, reason=provider.name, client=client
        )

    async def link(
        self,
        principal: Principal,
        provider_name: str,
        token: str,
        nonce: str | None,
        client: ClientInfo | None = None,
    ) -> IdentityView:
        """Link the token's identity to the caller. Raises ValidationFailed (unknown provider),
        IdTokenRejected, ServiceUnavailable, IdentityConflict when the identity belongs to
        another user or the caller already has one of that provider, InvalidToken when the user
        is gone."""
        provider = self._provider(provider_name)
        verified = await self.verify(provider, token, nonce)
        user_id = principal.user.id
        async with self._engine.begin() as conn:
            await self._spend(conn, provider, verified)
            if await users.lock_user(conn, user_id) is None:
                raise InvalidToken()
            existing = await db.find_identity(conn, provider.name, verified.subject)
            if existing is not None:
                if existing.user_id != user_id:
                    raise IdentityConflict()
                return _view(existing)  # already linked: the same answer again
            try:
                await self._link(conn, provider, verified, user_id, client)
            except _Raced:
                raise IdentityConflict() from None
            row = await db.find_identity(conn, provider.name, verified.subject)
        assert row is not None  # inserted by this transaction
        return _view(row)

    async def list(self, user_id: uuid.UUID) -> list[IdentityView]:
        async with self._engine.connect() as conn:
            return await identity_views(conn, user_id)

    async def unlink(
        self, principal: Principal, provider_name: str, client: ClientInfo | None = None
    ) -> None:
        """Remove the caller's identity of that provider. Raises NotFound when there is none,
        LastLoginMethod when it is the account's only way to sign in (no password, no other
        identity)."""
        user_id = principal.user.id
        async with self._engine.begin() as conn:
            # The lock serializes two unlinks of the last two identities.
            user = await users.lock_user(conn, user_id)
            if user is None:
                raise InvalidToken()
            linked = await db.list_identities(conn, user_id)
            if not any(row.provider == provider_name for row in linked):
                raise NotFound()
            if user.password_hash is None and len(linked) == 1:
                raise LastLoginMethod()
            await db.delete_identity(conn, user_id, provider_name)
            await audit.record(
                conn,
                EventKind.IDENTITY_UNLINKED,
                self._clock(),
                user_id,
                [principal.session_id],
                reason=provider_name,
                client=client,
            )
