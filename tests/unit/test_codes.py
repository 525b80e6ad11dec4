"""One-time codes: 8 digits, keyed hashes bound to the row and purpose, derived keys."""

from __future__ import annotations

import uuid

from service.domain import codes
from service.domain.codes import Purpose
from service.domain.keys import KeySet, hmac_key_set


def test_codes_are_8_digits_and_vary() -> None:
    drawn = {codes.new_code() for _ in range(200)}
    assert all(len(code) == 8 and code.isdigit() for code in drawn)
    assert len(drawn) > 190


def test_the_digest_needs_the_key_the_row_and_the_purpose(keys: KeySet) -> None:
    key = codes.code_key(keys)
    code_id = uuid.uuid4()
    stored = codes.digest(key, code_id, Purpose.PASSWORD_RESET, "01234567")
    assert codes.matches(key, code_id, Purpose.PASSWORD_RESET, "01234567", stored)
    assert not codes.matches(key, code_id, Purpose.PASSWORD_RESET, "01234568", stored)
    assert not codes.matches(key, uuid.uuid4(), Purpose.PASSWORD_RESET, "01234567", stored)
    assert not codes.matches(key, code_id, Purpose.EMAIL_VERIFICATION, "01234567", stored)
    other = codes.code_key(hmac_key_set(b"another-secret-that-is-32-bytes-long!!"))
    assert other != key
    assert not codes.matches(other, code_id, Purpose.PASSWORD_RESET, "01234567", stored)
    assert key != keys.signing.private  # derived, never the signing key itself
