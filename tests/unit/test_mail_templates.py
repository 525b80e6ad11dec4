"""Rendering: the built-in templates per kind, autoescaped HTML, link templates with the
address and code URL-encoded, overrides from a folder, the masked copy, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError
from service.domain.messages import MASK, MessageKind, MessageRenderer
from service.settings.mail import MailSettings


def test_every_kind_renders_text_and_html_with_the_app_name() -> None:
    renderer = MessageRenderer(MailSettings(app_name="Acme"))
    for kind in MessageKind:
        code = None if kind is MessageKind.PASSWORD_CHANGED else "01234567"
        rendered = renderer.render(kind, "ada@example.com", code)
        assert "Acme" in rendered.subject and "\n" not in rendered.subject
        assert "ada@example.com" in rendered.text and "<html>" in rendered.html
        if code is not None:
            assert code in rendered.text and code in rendered.html
            assert rendered.redacted_text is not None and rendered.redacted_html is not None
            assert code not in rendered.redacted_text and MASK in rendered.redacted_text
            assert code not in rendered.redacted_html
        else:
            assert rendered.redacted_text is None


def test_html_is_autoescaped_and_text_is_not() -> None:
    renderer = MessageRenderer(MailSettings(app_name="<b>Acme</b> & Co"))
    rendered = renderer.render(MessageKind.PASSWORD_CHANGED, "a<script>@example.com")
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; Co" in rendered.html and "<script>" not in rendered.html
    assert "<b>Acme</b> & Co" in rendered.text


def test_link_templates_carry_the_url_encoded_address_and_code() -> None:
    renderer = MessageRenderer(
        MailSettings(
            reset_url="https://app.example/reset?email={email}&code={code}",
            verify_url="https://app.example/verify/{code}",
        )
    )
    reset = renderer.render(MessageKind.PASSWORD_RESET, "ada+x@example.com", "01234567")
    link = "https://app.example/reset?email=ada%2Bx%40example.com&code=01234567"
    assert link in reset.text
    assert link.replace("&", "&amp;") in reset.html  # escaped in an attribute, as it must be
    assert MASK in (reset.redacted_text or "")
    assert "01234567" not in (reset.redacted_text or "")
    verify = renderer.render(MessageKind.EMAIL_VERIFICATION, "ada@example.com", "76543210")
    assert "https://app.example/verify/76543210" in verify.text
    assert "https://" not in renderer.render(MessageKind.PASSWORD_CHANGED, "a@b.co").text


def test_a_folder_overrides_some_templates_and_the_rest_are_built_in(tmp_path: Path) -> None:
    (tmp_path / "password_reset.txt").write_text("{{ app_name }} code: {{ code }}\n")
    renderer = MessageRenderer(MailSettings(templates_dir=tmp_path, app_name="Acme"))
    reset = renderer.render(MessageKind.PASSWORD_RESET, "ada@example.com", "01234567")
    assert reset.text == "Acme code: 01234567\n"
    assert "01234567" in reset.html and "Someone asked" in reset.html  # the built-in HTML
    renderer.check()


def test_a_broken_override_stops_start_up_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "password_changed.html").write_text("{% if %}")
    with pytest.raises(ConfigError, match="^AUTH_MAIL_TEMPLATES_DIR: "):
        MessageRenderer(MailSettings(templates_dir=tmp_path)).check()
    (tmp_path / "password_changed.html").write_text("{{ no_such_variable }}")
    with pytest.raises(ConfigError, match="^AUTH_MAIL_TEMPLATES_DIR: "):
        MessageRenderer(MailSettings(templates_dir=tmp_path)).check()
