"""The email rule (service/domain/emails.py) and its statement in the OpenAPI document."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from service.domain import emails
from service.web import schemas
from service.web.openapi import load_document


def test_every_format_character_is_invisible() -> None:
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) == "Cf":
            assert emails.has_invisible(char), hex(code)


def test_the_document_states_the_same_pattern_as_the_server() -> None:
    assert load_document()["components"]["schemas"]["Email"]["pattern"] == schemas.EMAIL_PATTERN


@pytest.mark.parametrize(
    ("typed", "form"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("ada@example.com.", "ada@example.com"),
        ("ada@example.com..", "ada@example.com"),
        ("\uff21\uff24\uff21@example.com", "ada@example.com"),
        ("e\u0301lan@example.com", "\u00e9lan@example.com"),
        ("Stra\u00dfe@example.com", "strasse@example.com"),
        ("no-at-sign.", "no-at-sign."),  # only a domain loses its trailing dot
    ],
)
def test_canonical_forms(typed: str, form: str) -> None:
    assert emails.canonical(typed) == form


def test_invisible_characters_are_refused_and_stripped_only_for_old_rows() -> None:
    with pytest.raises(emails.InvalidEmail):
        emails.canonical("ada@example.com\u200b")
    assert emails.lenient_canonical("\u200bada@example.com\u200d") == "ada@example.com"
