"""Messages to users: their kinds and their rendering from Jinja2 templates.

Each kind has three templates: `<kind>.subject.txt`, `<kind>.txt` (the text/plain part, which
carries the code) and `<kind>.html` (autoescaped). The built-in ones live in
service/templates/mail/; a file of the same name in AUTH_MAIL_TEMPLATES_DIR replaces one.
A message holding a code is rendered twice: as sent, and with the code masked, which is what the
outbox keeps once the message is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

import jinja2

from service.config import ConfigError
from service.settings.mail import MailSettings

MASK = "********"


class MessageKind(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a message kind, not a password)
    PASSWORD_CHANGED = "password_changed"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    # The parts with the code masked; None when the message holds no code.
    redacted_text: str | None = None
    redacted_html: str | None = None


class MessageRenderer:
    def __init__(self, mail: MailSettings) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if mail.templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(mail.templates_dir))
        loaders.append(jinja2.PackageLoader("service", "templates/mail"))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._mail = mail
        self._links = {
            MessageKind.PASSWORD_RESET: mail.reset_url,
            MessageKind.EMAIL_VERIFICATION: mail.verify_url,
        }

    def check(self) -> None:
        """Render every kind once (at start-up): ConfigError naming the templates folder on a
        template that is missing or does not render."""
        for kind in MessageKind:
            try:
                self.render(kind, "someone@example.com", "00000000")
            except jinja2.TemplateError as exc:
                raise ConfigError(
                    f"AUTH_MAIL_TEMPLATES_DIR: the {kind} templates do not render "
                    f"({type(exc).__name__}: {exc})"
                ) from None

    def render(self, kind: MessageKind, email: str, code: str | None = None) -> Rendered:
        subject, text, html = self._parts(kind, email, code)
        if code is None:
            return Rendered(subject, text, html)
        _, masked_text, masked_html = self._parts(kind, email, MASK)
        return Rendered(subject, text, html, masked_text, masked_html)

    def _parts(self, kind: MessageKind, email: str, code: str | None) -> tuple[str, str, str]:
        link_template = self._links.get(kind)
        link = None
        if link_template is not None and code is not None:
            link = link_template.format(email=quote(email, safe=""), code=quote(code, safe=""))
        context = {
            "app_name": self._mail.app_name,
            "email": email,
            "code": code,
            "link": link,
            "ttl_minutes": max(1, self._mail.code_ttl // 60),
        }
        subject = self._env.get_template(f"{kind}.subject.txt").render(context)
        text = self._env.get_template(f"{kind}.txt").render(context)
        html = self._env.get_template(f"{kind}.html").render(context)
        # A subject is one line: a template's trailing newline or a stray break must not become
        # a header injection.
        return " ".join(subject.split()), text, html
