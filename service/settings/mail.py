"""Recovery codes and message delivery: AUTH_CODE_*, AUTH_MAIL_*, AUTH_SMTP_URL and the rest.

Parsed once at start-up from the same environment as `service.config.Settings`; a bad value
raises ConfigError naming the variable (the value itself is never echoed: it may hold a password).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from service.config import ConfigError, _boolean, _integer, _non_empty, _read

LINK_FIELDS = frozenset({"email", "code"})
MIN_WEBHOOK_SECRET_BYTES = 16
DEFAULT_POLL_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    code_ttl: int = 900
    code_max_sends: int = 3
    require_verified_email: bool = False
    smtp_url: str | None = field(default=None, repr=False)  # may carry a password
    mail_from: str | None = None
    webhook_url: str | None = None
    webhook_secret: bytes | None = field(default=None, repr=False)
    retry_for: int = 86_400
    app_name: str = "Rotor"
    reset_url: str | None = None
    verify_url: str | None = None
    templates_dir: Path | None = None
    # Seconds between outbox polls of an idle delivery task; None: no task (tests drive
    # delivery themselves). Only used when a transport is configured.
    poll_interval: float | None = DEFAULT_POLL_INTERVAL

    @property
    def transport_configured(self) -> bool:
        return self.smtp_url is not None or self.webhook_url is not None


def _smtp_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("smtp://[user:pass@]host[:port] or smtps://[user:pass@]host[:port]")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("a valid port") from None
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls", "cafile"}
    if unknown:
        raise ValueError("only the query parameters starttls=require and cafile=<path>")
    if query.get("starttls", ["require"]) != ["require"]:
        raise ValueError("starttls=require as the only starttls value")
    if parts.scheme == "smtps" and "starttls" in query:
        raise ValueError("no starttls with smtps:// (implicit TLS)")
    for cafile in query.get("cafile", []):
        if not Path(cafile).is_file():
            raise ValueError("a cafile that is a readable file")
    return raw.strip()


def _http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL")
    return raw.strip()


def _link_template(raw: str) -> str:
    url = _http_url(raw)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError:
        raise ValueError("a URL whose only placeholders are {email} and {code}") from None
    if not names <= LINK_FIELDS or "code" not in names:
        raise ValueError("a URL with a {code} placeholder (and optionally {email}), nothing else")
    return url


def _secret(raw: str) -> bytes:
    secret = raw.encode("utf-8")
    if len(secret) < MIN_WEBHOOK_SECRET_BYTES:
        raise ValueError(f"at least {MIN_WEBHOOK_SECRET_BYTES} bytes")
    return secret


def _folder(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_dir():
        raise ValueError("the path of an existing folder")
    return path


def _address(raw: str) -> str:
    value = _non_empty(raw)
    if "@" not in value or any(c in value for c in "\r\n"):
        raise ValueError("an email address, optionally with a name: Name <noreply@example.com>")
    return value


def _poll_interval(raw: str) -> float | None:
    value = float(_integer(0, 3600)(raw))
    return value or None


def load_mail_settings(env: Mapping[str, str]) -> MailSettings:
    """The section from `env`; ConfigError naming the variable on any bad or missing value."""
    values: dict[str, object] = {}

    def take(attribute: str, name: str, parse: Callable[[str], object]) -> None:
        value = _read(env, name, parse)
        if value is not None:
            values[attribute] = value

    take("code_ttl", "AUTH_CODE_TTL", _integer(1, 7 * 86_400))
    take("code_max_sends", "AUTH_CODE_MAX_SENDS", _integer(1, 1000))
    take("require_verified_email", "AUTH_REQUIRE_VERIFIED_EMAIL", _boolean)
    take("smtp_url", "AUTH_SMTP_URL", _smtp_url)
    take("mail_from", "AUTH_MAIL_FROM", _address)
    take("webhook_url", "AUTH_MAIL_WEBHOOK_URL", _http_url)
    take("webhook_secret", "AUTH_MAIL_WEBHOOK_SECRET", _secret)
    take("retry_for", "AUTH_MAIL_RETRY_FOR", _integer(1, 30 * 86_400))
    take("app_name", "AUTH_APP_NAME", _non_empty)
    take("reset_url", "AUTH_RESET_URL", _link_template)
    take("verify_url", "AUTH_VERIFY_URL", _link_template)
    take("templates_dir", "AUTH_MAIL_TEMPLATES_DIR", _folder)
    if env.get("ROTOR_MAIL_POLL_INTERVAL"):
        values["poll_interval"] = _read(env, "ROTOR_MAIL_POLL_INTERVAL", _poll_interval)
    mail = MailSettings(**values)  # type: ignore[arg-type]
    _check(mail)
    return mail


def _check(mail: MailSettings) -> None:
    if mail.smtp_url is not None and mail.webhook_url is not None:
        raise ConfigError(
            "AUTH_MAIL_WEBHOOK_URL: set together with AUTH_SMTP_URL; expected one delivery "
            "back end only"
        )
    if mail.smtp_url is not None and mail.mail_from is None:
        raise ConfigError("AUTH_MAIL_FROM: missing, expected the sender address for AUTH_SMTP_URL")
    if mail.webhook_url is not None and mail.webhook_secret is None:
        raise ConfigError(
            "AUTH_MAIL_WEBHOOK_SECRET: missing, expected the signing secret for "
            "AUTH_MAIL_WEBHOOK_URL (at least 16 bytes)"
        )
