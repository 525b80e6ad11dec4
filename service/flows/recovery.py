"""Account recovery and email verification: forgot, reset, verify, resend.

forgot and resend answer alike for every address: the same statements (conditional writes),
the same code generation, hashing and rendering run whether or not a message goes out, so neither
the answer, its time, nor the database work tells whether an account exists.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db import recovery, users
from service.domain.clock import Clock
from service.domain.codes import Purpose
from service.domain.errors import InvalidCode, RateLimited
from service.domain.events import EventKind
from service.domain.messages import MessageKind
from service.domain.passwords import PasswordHasher
from service.domain.views import ClientInfo, UserView
from service.flows import audit
from service.flows.codes import Codes, Messages
from service.flows.throttle import IP_LIMIT_FACTOR, LoginThrottle, ip_key

ADDRESS_COUNTER = "code_address"
IP_COUNTER = "code_ip"
RESET_REASON = "password_reset"


class Recovery:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        hasher: PasswordHasher,
        codes: Codes,
        messages: Messages,
        throttle: LoginThrottle,
        clock: Clock,
    ) -> None:
        self._engine = engine
        # Its keys: the send counters are keyed like the login counters (a keyed hash of the
        # canonical address, the client's network), and a reset forgives the login failures.
        self._throttle = throttle
        self._settings = settings
        self._hasher = hasher
        self._codes = codes
        self._messages = messages
        self._clock = clock

    async def forgot(self, email: str, client: ClientInfo) -> None:
        """Send a password reset code if the address has an enabled account and is under its
        cap. Raises RateLimited past the per-IP limit; otherwise says nothing either way."""
        await self._send(email, client, Purpose.PASSWORD_RESET)

    async def resend(self, email: str, client: ClientInfo) -> None:
        """Send a new verification code if the address has an enabled, still unverified account
        and is under its cap. Raises RateLimited past the per-IP limit."""
        await self._send(email, client, Purpose.EMAIL_VERIFICATION)

    async def _send(self, email: str, client: ClientInfo, purpose: Purpose) -> None:
        now = self._clock()
        async with self._engine.begin() as conn:
            under_cap = await self._count(conn, email, client, now)
            found = await users.lock_user_by_email(conn, email)
            eligible = under_cap and _may_receive(found, purpose)
            # An unknown address still runs every statement, on an id no row has.
            user_id = uuid.uuid4() if found is None else found.id
            to = email if found is None else found.email
            await self._codes.issue(conn, user_id, to, purpose, now, eligible=eligible)

    async def _count(
        self, conn: AsyncConnection, email: str, client: ClientInfo, now: datetime
    ) -> bool:
        """Count the request per client IP (RateLimited past the limit) and per address;
        whether the address is still under AUTH_CODE_MAX_SENDS."""
        window = self._settings.login_window
        max_sends = self._settings.mail.code_max_sends
        if client.ip is not None:
            counted = await recovery.count_send(conn, IP_COUNTER, ip_key(client.ip), now, window)
            if counted.sends > max_sends * IP_LIMIT_FACTOR:
                window_end = counted.window_start + timedelta(seconds=window)
                error = RateLimited(max(1, math.ceil((window_end - now).total_seconds())))
                error.message = "Too many requests; try again later."
                raise error
        _, address = self._throttle.account_key(email)
        counted = await recovery.count_send(conn, ADDRESS_COUNTER, address, now, window)
        return counted.sends <= max_sends

    async def reset(
        self, email: str, code: str, new_password: str, client: ClientInfo | None = None
    ) -> None:
        """Set a new password with a right reset code: every session is revoked, the email is
        verified and a "password changed" message queued, in one transaction. Raises
        InvalidCode for a wrong, expired, used or dead code and for an unknown or disabled
        account; ServiceUnavailable when the bcrypt queue is full."""
        # Hashed before the transaction, so that no row lock waits on bcrypt.
        new_hash = await self._hasher.hash(new_password)
        async with self._engine.begin() as conn:
            now = self._clock()
            found = await users.lock_user_by_email(conn, email)
            redeemed = (
                found is not None
                and found.disabled_at is None
                and await self._codes.redeem(conn, found.id, Purpose.PASSWORD_RESET, code, now)
            )
            if redeemed and found is not None:
                await users.set_password_hash(conn, found.id, new_hash, now)
                await recovery.mark_email_verified(conn, found.id, now)
                await self._throttle.clear_account(conn, [self._throttle.account_key(email)])
                await audit.record(
                    conn,
                    EventKind.PASSWORD_CHANGED,
                    now,
                    found.id,
                    reason=RESET_REASON,
                    client=client,
                )
                await audit.revoke(conn, found.id, now, RESET_REASON, client)
                await self._messages.queue(conn, MessageKind.PASSWORD_CHANGED, found.email, now)
        # Outside the transaction: a wrong try is counted (committed) before the answer.
        if not redeemed:
            raise InvalidCode()

    async def verify(self, email: str, code: str) -> UserView:
        """Mark the email verified with a right verification code; raises InvalidCode
        otherwise (an unknown email included)."""
        async with self._engine.begin() as conn:
            now = self._clock()
            found = await users.lock_user_by_email(conn, email)
            redeemed = found is not None and await self._codes.redeem(
                conn, found.id, Purpose.EMAIL_VERIFICATION, code, now
            )
            if redeemed and found is not None:
                await recovery.mark_email_verified(conn, found.id, now)
        if not redeemed or found is None:
            raise InvalidCode()
        return UserView(
            id=found.id, email=found.email, created_at=found.created_at, email_verified=True
        )


def _may_receive(found: users.UserRow | None, purpose: Purpose) -> bool:
    if found is None or found.disabled_at is not None:
        return False
    return purpose is Purpose.PASSWORD_RESET or found.email_verified_at is None
