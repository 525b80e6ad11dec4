"""Generates tests/vectors/django.json: password hashes made by Django's own hashers.

Run once, by hand, in a scratch virtualenv (Django is not a dependency of Rotor):

    python3 -m venv /tmp/django && /tmp/django/bin/pip install django bcrypt
    /tmp/django/bin/python tests/vectors/make_django_vectors.py > tests/vectors/django.json

The test suite reads only the JSON.
"""

import json
import sys

import django
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    ]
)
django.setup()

from django.contrib.auth.hashers import (  # noqa: E402
    BCryptSHA256PasswordHasher,
    PBKDF2PasswordHasher,
    make_password,
)


class CheapBCryptSHA256(BCryptSHA256PasswordHasher):
    """Django's own code at a lower cost, so most vectors verify quickly."""

    rounds = 5


PASSWORDS = {
    "ascii": "correct horse battery staple",
    "unicode": "pässwörd-日本語-🔑",
    # bcrypt_sha256 hashes first, so nothing is lost past 72 bytes.
    "longer_than_72_bytes": "a" * 70 + "bcdefghijklmnopqrstuvwxyz0123",
}

vectors = []
for name, password in PASSWORDS.items():
    pbkdf2 = PBKDF2PasswordHasher()
    vectors.append(
        {"name": name, "password": password, "hash": pbkdf2.encode(password, pbkdf2.salt(), 1000)}
    )
    cheap = CheapBCryptSHA256()
    vectors.append(
        {"name": name, "password": password, "hash": cheap.encode(password, cheap.salt())}
    )
# One of each at Django's defaults, exactly as make_password stores them today.
for hasher in ("pbkdf2_sha256", "bcrypt_sha256"):
    password = PASSWORDS["ascii"]
    vectors.append(
        {
            "name": "default_cost",
            "password": password,
            "hash": make_password(password, hasher=hasher),
        }
    )

document = {
    "generator": "tests/vectors/make_django_vectors.py",
    "django": django.get_version(),
    "vectors": vectors,
}
json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
sys.stdout.write("\n")
