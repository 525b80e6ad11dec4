"""The caller's account: register, change the password, delete the account.

Register is throttled per client IP (registrations of taken addresses count, so `409` cannot
test addresses at speed); a wrong password at re-authentication (password change, account
deletion) counts as a failed login of the account, so a stolen access token does not allow
guessing the password online.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import events, users
from service.domain.clock import Clock
from service.domain.codes import Purpose
from service.domain.errors import EmailTaken, InvalidToken, WrongPassword
from service.domain.events import EventKind
from service.domain.messages import MessageKind
from service.domain.passwords import PasswordHasher
from service.domain.views import ClientInfo, Principal, UserView
from service.flows import audit
from service.flows.codes import Codes, Messages
from service.flows.throttle import LoginThrottle

# The per-IP counter of registrations of addresses that already have an account.
REGISTER_IP = "register_ip"


class Accounts:
    def __init__(
        self,
        engine: AsyncEngine,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        clock: Clock,
        codes: Codes,
        messages: Messages,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._throttle = throttle
        self._codes = codes
        self._messages = messages
        self._clock = clock

    async def register(
        self, email: str, password: str, client: ClientInfo | None = None
    ) -> UserView:
        """A new user, with its verification message queued in the same transaction. Raises
        RateLimited when the client IP has tried too many taken addresses this window,
        EmailTaken when the address already has an account."""
        throttle_keys = self._throttle.ip_keys(REGISTER_IP, client or ClientInfo())
        async with self._engine.connect() as conn:
            await self._throttle.check(conn, throttle_keys)
        password_hash = await self._hasher.hash(password)
        now = self._clock()
        user_id = uuid.uuid4()
        async with self._engine.begin() as conn:
            inserted = await users.insert_user(conn, user_id, email, password_hash, now)
            if inserted:
                await self._codes.issue(conn, user_id, email, Purpose.EMAIL_VERIFICATION, now)
            else:
                await self._throttle.record_failure(conn, throttle_keys, now)
        if not inserted:
            raise EmailTaken()
        return UserView(id=user_id, email=email, created_at=now, email_verified=False)

    async def change_password(
        self, principal: Principal, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        """Set a new password, revoke every other session of the user and queue the "password
        changed" message.

        Raises RateLimited when the account is throttled, WrongPassword for a wrong `current`
        (counted as a failed login), InvalidToken when the user is gone.
        """
        await self._reauthenticate(principal, current, client)
        new_hash = await self._hasher.hash(new)
        user_id, session_id = principal.user.id, principal.session_id
        async with self._engine.begin() as conn:
            now = self._clock()
            locked = await users.lock_user(conn, user_id)
            if locked is None:
                raise InvalidToken()  # deleted meanwhile
            await users.set_password_hash(conn, user_id, new_hash, now)
            await self._messages.queue(conn, MessageKind.PASSWORD_CHANGED, locked.email, now)
            await audit.record(
                conn, EventKind.PASSWORD_CHANGED, now, user_id, [session_id], client=client
            )
            await audit.revoke(conn, user_id, now, "password_changed", client, keep=session_id)

    async def delete_account(
        self, principal: Principal, password: str, client: ClientInfo | None = None
    ) -> None:
        """Remove the user with every session and token; raises RateLimited when the account
        is throttled, WrongPassword for a wrong password (counted as a failed login),
        InvalidToken when the user is gone."""
        await self._reauthenticate(principal, password, client)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await users.lock_user(conn, principal.user.id) is None:
                return  # a concurrent deletion won
            await users.delete_user(conn, principal.user.id)
            # The events stay until pruned (abuse investigations), no longer tied to the account.
            await events.detach_auth_events(conn, principal.user.id)
            sessions = [principal.session_id]
            await audit.record(conn, EventKind.ACCOUNT_DELETED, now, None, sessions, client=client)

    async def _reauthenticate(
        self, principal: Principal, password: str, client: ClientInfo | None
    ) -> None:
        """The login throttle's rules: checked before the password (a throttled attempt costs
        no bcrypt and is not a failure), a wrong password counted on the account and the IP."""
        async with self._engine.connect() as conn:
            user = await users.find_user(conn, principal.user.id)
            if user is None:
                raise InvalidToken()
            throttle_keys = self._throttle.keys(user.email, client or ClientInfo())
            await self._throttle.check(conn, throttle_keys)
        if user.password_hash is None:
            # No password to confirm (an identity provider's account): the same work and answer
            # as a wrong one. Such an account sets a password only through a password reset.
            await self._hasher.verify_nothing(password)
        elif await self._hasher.verify(password, user.password_hash, f"user {user.id}"):
            return
        async with self._engine.begin() as conn:
            now = self._clock()
            await self._throttle.record_failure(conn, throttle_keys, now)
            await audit.record(
                conn,
                EventKind.LOGIN_FAILED,
                now,
                user.id,
                [principal.session_id],
                reason="invalid_credentials",
                client=client,
            )
        raise WrongPassword()
