"""Delivery back ends of the outbox: SMTP (aiosmtplib) and the signed webhook (aiohttp).

A failed send raises DeliveryError whose text is safe to store and log: an SMTP status code or
an exception's class, an HTTP status; never a password, a message's text or its code.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import aiosmtplib
import orjson

from service.settings.mail import MailSettings

SMTP_TIMEOUT = 30.0
WEBHOOK_TIMEOUT = 15.0
MESSAGE_HEADER = "X-Rotor-Message"
SIGNATURE_HEADER = "X-Rotor-Signature"


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: str
    kind: str
    to: str
    subject: str
    text: str
    html: str
    created_at: datetime


class DeliveryError(Exception):
    """The message was not accepted; the text names why without any secret."""


class Sender(Protocol):
    async def send(self, message: Outgoing) -> None: ...

    async def close(self) -> None: ...


def message_id(message_id: str, mail_from: str | None) -> str:
    """Stable per outbox row, so a receiver can drop a copy sent again after a crash."""
    _, address = parseaddr(mail_from or "")
    domain = address.rpartition("@")[2] or "rotor.invalid"
    return f"<{message_id}@{domain}>"


def email_message(message: Outgoing, mail_from: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = mail_from
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message_id(message.id, mail_from)
    email[MESSAGE_HEADER] = message.kind
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class SmtpSender:
    """smtp://[user:pass@]host[:port] (STARTTLS when offered; ?starttls=require demands it) or
    smtps:// (implicit TLS); ?cafile=<path> trusts that CA bundle as well."""

    def __init__(self, url: str, mail_from: str, timeout: float = SMTP_TIMEOUT) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._implicit_tls = parts.scheme == "smtps"
        self._hostname = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._implicit_tls else 25)
        self._username = None if parts.username is None else unquote(parts.username)
        self._password = None if parts.password is None else unquote(parts.password)
        # None: STARTTLS if the server offers it; True: refuse to send without it.
        self._start_tls: bool | None = True if query.get("starttls") == ["require"] else None
        if self._implicit_tls:
            self._start_tls = False
        self._cafile = query.get("cafile", [None])[0]
        self._mail_from = mail_from
        self._timeout = timeout

    async def send(self, message: Outgoing) -> None:
        try:
            await aiosmtplib.send(
                email_message(message, self._mail_from),
                hostname=self._hostname,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._implicit_tls,
                start_tls=self._start_tls,
                cert_bundle=self._cafile,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{type(exc).__name__}: SMTP status {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(type(exc).__name__) from None

    async def close(self) -> None:
        """Each send has its own connection: nothing to close."""


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(message: Outgoing) -> bytes:
    return orjson.dumps(
        {
            "id": message.id,
            "kind": message.kind,
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "created_at": message.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


class WebhookSender:
    """POST the message as JSON, signed with HMAC-SHA256; any non-2xx answer is a failure."""

    def __init__(self, url: str, secret: bytes, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self._url = url
        self._secret = secret
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def send(self, message: Outgoing) -> None:
        body = webhook_body(message)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body),
            MESSAGE_HEADER: message.kind,
        }
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"the webhook answered HTTP {response.status}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(type(exc).__name__) from None

    async def close(self) -> None:
        await self._session.close()


def sender_for(mail: MailSettings) -> Sender | None:
    """The configured back end; None when neither is set (messages wait in the outbox)."""
    if mail.smtp_url is not None and mail.mail_from is not None:
        return SmtpSender(mail.smtp_url, mail.mail_from)
    if mail.webhook_url is not None and mail.webhook_secret is not None:
        return WebhookSender(mail.webhook_url, mail.webhook_secret)
    return None
