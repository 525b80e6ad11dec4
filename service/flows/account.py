"""The caller's account: register, change the password, delete the account."""

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


class Accounts:
    def __init__(
        self,
        engine: AsyncEngine,
        hasher: PasswordHasher,
        clock: Clock,
        codes: Codes,
        messages: Messages,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._clock = clock
        self._codes = codes
        self._messages = messages

    async def register(self, email: str, password: str) -> UserView:
        """A new user, with its verification message queued in the same transaction; raises
        EmailTaken when the address already has an account."""
        password_hash = await self._hasher.hash(password)
        now = self._clock()
        user_id = uuid.uuid4()
        async with self._engine.begin() as conn:
            if not await users.insert_user(conn, user_id, email, password_hash, now):
                raise EmailTaken()
            await self._codes.issue(conn, user_id, email, Purpose.EMAIL_VERIFICATION, now)
        return UserView(id=user_id, email=email, created_at=now, email_verified=False)

    async def change_password(
        self, principal: Principal, current: str, new: str, client: ClientInfo | None = None
    ) -> None:
        """Set a new password, revoke every other session of the user and queue the "password
        changed" message.

        Raises WrongPassword for a wrong `current`, InvalidToken when the user is gone.
        """
        await self._reauthenticate(principal, current)
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
        """Remove the user with every session and token; raises WrongPassword for a wrong
        password, InvalidToken when the user is gone."""
        await self._reauthenticate(principal, password)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await users.lock_user(conn, principal.user.id) is None:
                return  # a concurrent deletion won
            await users.delete_user(conn, principal.user.id)
            # The events stay until pruned (abuse investigations), no longer tied to the account.
            await events.detach_auth_events(conn, principal.user.id)
            sessions = [principal.session_id]
            await audit.record(conn, EventKind.ACCOUNT_DELETED, now, None, sessions, client=client)

    async def _reauthenticate(self, principal: Principal, password: str) -> None:
        async with self._engine.connect() as conn:
            user = await users.find_user(conn, principal.user.id)
        if user is None:
            raise InvalidToken()
        if user.password_hash is None:
            # No password to confirm (an identity provider's account): the same work and answer
            # as a wrong one. Such an account sets a password only through a password reset.
            await self._hasher.verify_nothing(password)
            raise WrongPassword()
        if not await self._hasher.verify(password, user.password_hash, f"user {user.id}"):
            raise WrongPassword()
