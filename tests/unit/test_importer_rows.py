"""Row validation of `rotor import-users`, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from service.ops.importer import Rejection, Row, parse, validate

HASH = "$2a$10$c4G9NrDaZiDSpFZ8krYpJOK3NBmFnWWR1eoKl7ZEgt6PMJht7fdNK"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456-01:30", datetime(2024, 5, 1, 13, 30, 0, 123456, tzinfo=UTC)),
        (None, None),
    ],
)
def test_rfc3339_created_at_is_read_as_utc(value: str | None, expected: datetime | None) -> None:
    row = validate(1, {"email": "a@example.com", "password_hash": HASH, "created_at": value})
    assert isinstance(row, Row)
    assert row.created_at == expected


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01",  # a date alone
        "2024-05-01T12:00:00",  # no offset: ambiguous
        "2024-05-01T12:00Z",  # no seconds
        "2024-02-30T12:00:00Z",  # no such day
        "1714564800",
        1714564800,
        "",
    ],
)
def test_anything_else_is_not_a_created_at(value: object) -> None:
    rejection = validate(1, {"email": "a@example.com", "password_hash": HASH, "created_at": value})
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("created_at: ")


def test_email_is_trimmed_as_the_api_does_and_hash_kept_verbatim() -> None:
    row = validate(7, {"email": "  Ada@Example.com\t", "password_hash": HASH})
    assert row == Row(7, "Ada@Example.com", HASH, None)


def test_every_bad_field_of_a_row_is_named() -> None:
    rejection = validate(3, {"email": "a" * 250 + "@b.io", "password_hash": "x" * 600})
    assert rejection == Rejection(
        3,
        "email: must be an email address; password_hash: unknown hash scheme "
        "(known: $2a$, $2b$, $2y$ bcrypt; bcrypt-hmac-sha256$, bcrypt_sha256$, pbkdf2_sha256$)",
    )


def test_repeated_emails_keep_the_first_occurrence() -> None:
    text = "\n".join(
        json.dumps({"email": email, "password_hash": HASH})
        for email in ("a@example.com", "b@example.com", "A@EXAMPLE.COM")
    )
    parsed = parse(text, "jsonl")
    assert [row.email for row in parsed.rows] == ["a@example.com", "b@example.com"]
    assert parsed.duplicates == [(3, 1)]
    assert parsed.rejected == []
