"""The mail and code settings: defaults, parsing, and one line naming the variable for every
bad value or combination."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, load_settings
from service.settings.mail import MailSettings, load_mail_settings


def test_defaults_are_the_documented_ones() -> None:
    mail = load_settings({}).mail
    assert mail == MailSettings()
    assert (mail.code_ttl, mail.code_max_sends, mail.retry_for) == (900, 3, 86_400)
    assert mail.require_verified_email is False and not mail.transport_configured


def test_values_are_read(tmp_path: Path) -> None:
    mail = load_mail_settings(
        {
            "AUTH_CODE_TTL": "60",
            "AUTH_CODE_MAX_SENDS": "5",
            "AUTH_REQUIRE_VERIFIED_EMAIL": "true",
            "AUTH_SMTP_URL": "smtps://u:p@mail.example:465",
            "AUTH_MAIL_FROM": "App <noreply@app.example>",
            "AUTH_MAIL_RETRY_FOR": "3600",
            "AUTH_APP_NAME": "Acme",
            "AUTH_RESET_URL": "https://app.example/reset?email={email}&code={code}",
            "AUTH_VERIFY_URL": "https://app.example/verify/{code}",
            "AUTH_MAIL_TEMPLATES_DIR": str(tmp_path),
        }
    )
    assert mail.code_ttl == 60 and mail.code_max_sends == 5 and mail.require_verified_email
    assert mail.smtp_url == "smtps://u:p@mail.example:465" and mail.app_name == "Acme"
    assert mail.templates_dir == tmp_path and mail.transport_configured
    assert "u:p" not in repr(mail)  # the SMTP password is not in a repr


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AUTH_CODE_TTL": "0"}, "AUTH_CODE_TTL"),
        ({"AUTH_CODE_MAX_SENDS": "lots"}, "AUTH_CODE_MAX_SENDS"),
        ({"AUTH_REQUIRE_VERIFIED_EMAIL": "maybe"}, "AUTH_REQUIRE_VERIFIED_EMAIL"),
        ({"AUTH_SMTP_URL": "http://mail.example"}, "AUTH_SMTP_URL"),
        ({"AUTH_SMTP_URL": "smtp://mail.example?starttls=maybe"}, "AUTH_SMTP_URL"),
        ({"AUTH_SMTP_URL": "smtps://mail.example?starttls=require"}, "AUTH_SMTP_URL"),
        ({"AUTH_SMTP_URL": "smtp://mail.example"}, "AUTH_MAIL_FROM"),
        ({"AUTH_SMTP_URL": "smtp://h", "AUTH_MAIL_FROM": "nobody"}, "AUTH_MAIL_FROM"),
        ({"AUTH_MAIL_WEBHOOK_URL": "ftp://x"}, "AUTH_MAIL_WEBHOOK_URL"),
        ({"AUTH_MAIL_WEBHOOK_URL": "https://app.example/hook"}, "AUTH_MAIL_WEBHOOK_SECRET"),
        ({"AUTH_MAIL_WEBHOOK_SECRET": "short"}, "AUTH_MAIL_WEBHOOK_SECRET"),
        (
            {
                "AUTH_SMTP_URL": "smtp://h",
                "AUTH_MAIL_FROM": "a@b.c",
                "AUTH_MAIL_WEBHOOK_URL": "https://h/x",
                "AUTH_MAIL_WEBHOOK_SECRET": "0123456789abcdef",
            },
            "AUTH_MAIL_WEBHOOK_URL",
        ),
        ({"AUTH_MAIL_RETRY_FOR": "-1"}, "AUTH_MAIL_RETRY_FOR"),
        ({"AUTH_RESET_URL": "https://app.example/reset"}, "AUTH_RESET_URL"),
        ({"AUTH_VERIFY_URL": "https://app.example/{code}/{token}"}, "AUTH_VERIFY_URL"),
        ({"AUTH_MAIL_TEMPLATES_DIR": "/no/such/folder"}, "AUTH_MAIL_TEMPLATES_DIR"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert message.startswith(f"{variable}:"), message
    assert "\n" not in message
    for value in env.values():
        if len(value) > 4 and "://" in value and "@" in value:
            assert value not in message  # a URL that may hold a password is not echoed
