"""Shared by the flows that send messages: the outbox writer and the one-time codes.

Both write in the caller's transaction, so a code is never issued without its message and no
message is sent for a change that rolled back.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import outbox, recovery
from service.domain import codes
from service.domain.codes import Purpose
from service.domain.messages import MessageKind, MessageRenderer
from service.settings.mail import MailSettings

KIND_OF = {
    Purpose.PASSWORD_RESET: MessageKind.PASSWORD_RESET,
    Purpose.EMAIL_VERIFICATION: MessageKind.EMAIL_VERIFICATION,
}


class Messages:
    """Renders a message and writes it to the outbox."""

    def __init__(self, renderer: MessageRenderer, mail: MailSettings) -> None:
        self._renderer = renderer
        self._retry_for = timedelta(seconds=mail.retry_for)

    async def queue(
        self,
        conn: AsyncConnection,
        kind: MessageKind,
        to: str,
        now: datetime,
        code: str | None = None,
        *,
        eligible: bool = True,
    ) -> None:
        """Queue one message to `to`; with eligible=False the same rendering and statement run
        and nothing is written (see recovery.insert_if)."""
        rendered = self._renderer.render(kind, to, code)
        values = {
            "id": uuid.uuid4(),
            "kind": kind.value,
            "recipient": to,
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "redacted_text": rendered.redacted_text,
            "redacted_html": rendered.redacted_html,
            "created_at": now,
            "give_up_at": now + self._retry_for,
        }
        await outbox.insert_message_if(conn, eligible, values)


class Codes:
    """Issue and redeem one-time codes (single use, AUTH_CODE_TTL, 5 wrong tries)."""

    def __init__(self, key: bytes, mail: MailSettings, messages: Messages) -> None:
        self._key = key
        self._ttl = timedelta(seconds=mail.code_ttl)
        self._messages = messages

    async def issue(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        email: str,
        purpose: Purpose,
        now: datetime,
        *,
        eligible: bool = True,
    ) -> None:
        """A new code (killing the user's earlier ones of this purpose) and its message. With
        eligible=False every step runs the same way and writes nothing, so that an address
        with no account costs the same work."""
        code, code_id = codes.new_code(), uuid.uuid4()
        digest = codes.digest(self._key, code_id, purpose, code)
        await recovery.delete_codes(conn, user_id, purpose)
        await recovery.insert_code_if(
            conn,
            eligible,
            code_id=code_id,
            user_id=user_id,
            purpose=purpose,
            digest=digest,
            now=now,
            expires_at=now + self._ttl,
        )
        await self._messages.queue(conn, KIND_OF[purpose], email, now, code, eligible=eligible)

    async def redeem(
        self, conn: AsyncConnection, user_id: uuid.UUID, purpose: Purpose, code: str, now: datetime
    ) -> bool:
        """Whether `code` is the user's live code of this purpose; a right one is used up (with
        every other of the purpose), a wrong one counts a try and dies at the fifth."""
        row = await recovery.lock_live_code(conn, user_id, purpose, now)
        if row is None:
            return False
        if codes.matches(self._key, row.id, purpose, code, row.digest):
            await recovery.delete_codes(conn, user_id, purpose)
            return True
        if await recovery.count_wrong_try(conn, row.id) >= codes.MAX_WRONG_TRIES:
            await recovery.delete_code(conn, row.id)
        return False
