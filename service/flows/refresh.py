"""Refresh: rotate the presented token, hand back the same child to a retry within the grace
window, and revoke the whole session when a spent token comes back otherwise.

A token may rotate now when it is known, its secret matches, it is unspent and unexpired, its
user is enabled and its session is live (service/domain/sessions.py). That rule runs as one SQL
statement (refresh_tokens.rotate_refresh_tokens), shared by the refreshes of the moment; the locked
transaction below only decides what a token that did not rotate means, and when it finds one
that may rotate after all (the clock moved on), it runs that same statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db import refresh_tokens, sessions
from service.db.batching import Batcher
from service.domain.clock import Clock
from service.domain.errors import InvalidGrant, TokenReused
from service.domain.events import EventKind
from service.domain.observer import AuthObserver, RefreshOutcome
from service.domain.rotation import may_rotate, session_usable
from service.domain.tokens import RefreshToken
from service.domain.views import ClientInfo, IssuedTokens, UserView
from service.flows import audit
from service.flows.issuing import TokenIssuer

# A rotation batch's answer to one refresh: the locked row, and the time the batch ran at.
_Rotated = tuple[refresh_tokens.Rotation, datetime]


def _user(row: refresh_tokens.Rotation | refresh_tokens.LockedRefreshToken) -> UserView:
    return UserView(
        id=row.user_id,
        email=row.email,
        created_at=row.user_created_at,
        email_verified=row.email_verified_at is not None,
    )


class Refresh:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        issuer: TokenIssuer,
        clock: Clock,
        observer: AuthObserver,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._issuer = issuer
        self._clock = clock
        self._observer = observer
        # The refresh fast path is one statement that needs no transaction around it: no BEGIN
        # and COMMIT round trips, and it is shared by the refreshes of the moment.
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._rotations: Batcher[uuid.UUID, refresh_tokens.RotationAsk, _Rotated] = Batcher(
            autocommit, self._rotate_batch
        )

    async def refresh(self, raw_token: str | None, client: ClientInfo) -> IssuedTokens:
        """A new token pair for a live refresh token, or the same child again for a retry.

        Raises InvalidGrant for an unknown, malformed, expired or revoked token (or none), and
        TokenReused after revoking the session when a spent token is presented outside grace.
        """
        try:
            tokens, outcome = await self._refresh(raw_token, client)
        except InvalidGrant:
            self._observer.on_refresh("invalid", None, None)
            raise
        self._observer.on_refresh(outcome, tokens.user.id, tokens.session_id)
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
        answer = await self._rotations.ask(presented.id, _ask(presented, child, client))
        if answer is None:
            raise InvalidGrant()
        row, now = answer
        if row.child_expires_at is not None:
            return self._issued(row, child, row.child_expires_at, now), "rotated"
        # Not rotated: a spent token (grace retry or reuse), or one that fails a check. The
        # transaction below decides which, under the same row locks.
        return await self._refresh_locked(presented, client)

    async def _rotate_batch(
        self, conn: AsyncConnection, asks: Mapping[uuid.UUID, refresh_tokens.RotationAsk]
    ) -> dict[uuid.UUID, _Rotated]:
        now = self._clock()
        rows = await refresh_tokens.rotate_refresh_tokens(
            conn, list(asks.values()), now=now, idle_ttl=self._issuer.idle
        )
        return {token_id: (row, now) for token_id, row in rows.items()}

    async def _refresh_locked(
        self, presented: RefreshToken, client: ClientInfo
    ) -> tuple[IssuedTokens, RefreshOutcome]:
        async with self._engine.begin() as conn:
            now = self._clock()
            row = await refresh_tokens.lock_refresh_token(conn, presented.id)
            if row is None or not presented.matches(row.verifier):
                raise InvalidGrant()
            if not session_usable(row, now, self._issuer.idle):
                raise InvalidGrant()
            if row.spent_at is None:
                if not may_rotate(row, now, self._issuer.idle):
                    raise InvalidGrant()  # expired
                return await self._rotate_locked(conn, presented, client, now), "rotated"
            retry = await self._grace_retry(conn, presented, row, now)
            if retry is not None:
                return retry, "grace_retry"
            # Theft: revoke the whole session, commit that (and its audit), then refuse.
            await sessions.revoke_session(conn, row.session_id, now, "token_reused")
            revoked = [row.session_id]
            await audit.record(
                conn, EventKind.REFRESH_REUSE_DETECTED, now, row.user_id, revoked, client=client
            )
            await audit.record(
                conn,
                EventKind.SESSION_REVOKED,
                now,
                row.user_id,
                revoked,
                reason="token_reused",
                client=client,
            )
        self._observer.on_refresh("reuse_detected", row.user_id, row.session_id)
        raise TokenReused()

    async def _rotate_locked(
        self, conn: AsyncConnection, presented: RefreshToken, client: ClientInfo, now: datetime
    ) -> IssuedTokens:
        """The single rotation statement, inside this transaction (which already holds the
        rows it locks)."""
        child = presented.child(uuid.uuid4())
        rows = await refresh_tokens.rotate_refresh_tokens(
            conn, [_ask(presented, child, client)], now=now, idle_ttl=self._issuer.idle
        )
        row = rows.get(presented.id)
        if row is None or row.child_expires_at is None:
            raise InvalidGrant()
        return self._issued(row, child, row.child_expires_at, now)

    async def _grace_retry(
        self,
        conn: AsyncConnection,
        presented: RefreshToken,
        row: refresh_tokens.LockedRefreshToken,
        now: datetime,
    ) -> IssuedTokens | None:
        """The same child again when `presented` was spent by the session's latest rotation
        less than AUTH_REUSE_GRACE seconds ago; None when this presentation is a reuse."""
        grace = self._settings.reuse_grace
        if grace <= 0 or row.spent_at is None or (now - row.spent_at).total_seconds() > grace:
            return None
        child_row = await refresh_tokens.find_child(conn, presented.id)
        if child_row is None or child_row.spent_at is not None or child_row.expires_at <= now:
            return None
        return self._issued(row, presented.child(child_row.id), child_row.expires_at, now)

    def _issued(
        self,
        row: refresh_tokens.Rotation | refresh_tokens.LockedRefreshToken,
        child: RefreshToken,
        child_expires_at: datetime,
        now: datetime,
    ) -> IssuedTokens:
        return self._issuer.issue(
            _user(row), row.session_id, child, child_expires_at, row.session_expires_at, now
        )


def _ask(
    presented: RefreshToken, child: RefreshToken, client: ClientInfo
) -> refresh_tokens.RotationAsk:
    return refresh_tokens.RotationAsk(
        presented.id, presented.verifier, child.id, child.verifier, client.user_agent, client.ip
    )
