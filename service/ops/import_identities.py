"""The identities an imported user may carry (`rotor import-users`): in JSON Lines an
`identities` list of `{"provider", "subject"}` objects, in CSV one pair of `identity_provider`,
`identity_subject` columns. A user with an identity may come without a password hash: it then
signs in with its provider only, until a password reset sets a password."""

from __future__ import annotations

import re
from typing import Any

_PROVIDER = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_SUBJECT = 255
MAX_IDENTITIES = 16

Identity = tuple[str, str]


def _one(provider: object, subject: object) -> Identity:
    if not isinstance(provider, str) or not _PROVIDER.match(provider):
        raise ValueError("provider must be a provider name (lowercase letters, digits, _)")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
        raise ValueError(f"subject must be a string of 1 to {MAX_SUBJECT} characters")
    return provider, subject


def identities_of(record: dict[str, Any]) -> tuple[Identity, ...]:
    """The record's identities (none when it has no such field); ValueError names the problem."""
    found: list[Identity] = []
    provider, subject = record.get("identity_provider"), record.get("identity_subject")
    if provider or subject:  # CSV columns; an empty cell is no identity
        found.append(_one(provider, subject))
    listed = record.get("identities")
    if listed is not None:
        if not isinstance(listed, list) or len(listed) > MAX_IDENTITIES:
            raise ValueError(f"must be a list of at most {MAX_IDENTITIES} objects")
        for item in listed:
            if not isinstance(item, dict):
                raise ValueError('each must be {"provider", "subject"}')
            found.append(_one(item.get("provider"), item.get("subject")))
    if len({provider for provider, _ in found}) != len(found):
        raise ValueError("at most one identity per provider")
    return tuple(found)
