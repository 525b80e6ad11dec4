"""The email rule: one canonical form per address, so look-alikes are one account.

`canonical(" \\uff21da@Example.com. ")` (a fullwidth A) is `ada@example.com`: trimmed,
Unicode NFKC (fullwidth and other compatibility forms become their plain letters, a decomposed
`e` + accent becomes `é`), case-folded (a fuller lower-casing than `lower()`: `ß` becomes
`ss`), and a trailing dot of the domain dropped (`example.com.` is the DNS root form of
`example.com`). An address holding an invisible or format character (Unicode category Cf:
zero-width space and joiners, the byte-order mark, bidirectional controls) is refused outright
rather than stripped: it is how one address is made to look like another, and no real mailbox
needs one.
"""

from __future__ import annotations

import unicodedata

# Invisible and format characters, as code point ranges: Unicode category Cf (soft hyphen,
# Arabic number marks, zero-width space, joiners and non-joiners, bidirectional embeddings,
# overrides and isolates, word joiner and invisible operators, the byte-order mark, interlinear
# annotation, Egyptian and shorthand format controls, musical formatting, tag characters),
# plus invisible letters outside Cf (the combining grapheme joiner, Hangul fillers). Spelled out
# rather than asked of `unicodedata`, so that the rule is the same on every Python and the
# OpenAPI document can state it (tests/unit/test_emails.py checks it covers every Cf).
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0x3164, 0x3164),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_INVISIBLE = frozenset(chr(code) for low, high in INVISIBLE_RANGES for code in range(low, high + 1))
# Characters that NFKC turns into "@" (small and fullwidth commercial at): refused in an
# address, so that the "@" the user typed is the one that splits the canonical form.
AT_LOOKALIKES = "\ufe6b\uff20"


class InvalidEmail(ValueError):
    """The address holds an invisible or format character."""


def has_invisible(text: str) -> bool:
    return not _INVISIBLE.isdisjoint(text)


def display_form(email: str) -> str:
    """The address as the user typed it, trimmed: what Rotor stores and shows."""
    return email.strip()


def canonical(email: str) -> str:
    """The form addresses are compared in; InvalidEmail for an invisible character."""
    if has_invisible(email):
        raise InvalidEmail("must not contain invisible or format characters")
    return _canonical(email)


def lenient_canonical(email: str) -> str:
    """The canonical form of an address stored before the rule, invisible characters dropped:
    so that `ada@example.com` + a zero-width space is found to collide with `ada@example.com`."""
    return _canonical("".join(char for char in email if char not in _INVISIBLE))


def _canonical(email: str) -> str:
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    # Case folding can leave a string that is no longer NFKC (a few letters fold to decomposed
    # sequences): normalise again, the fixed point of both.
    folded = unicodedata.normalize("NFKC", folded)
    local, at, domain = folded.rpartition("@")
    if at and domain.endswith("."):
        domain = domain.rstrip(".")
    return f"{local}{at}{domain}"
