"""POST /v1/login with hashes imported from other systems: they log in, and are upgraded."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import MakeClient
from helpers import Client, error_of, login

from service.domain import hash_schemes
from service.domain.passwords import hash_password_sync, verify_password_sync

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CREATED = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


def vectors(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((VECTORS / f"{name}.json").read_text())["vectors"]
    return loaded


def vector_id(vector: dict[str, Any]) -> str:
    scheme, _ = hash_schemes.split(vector["hash"])
    assert scheme is not None
    return f"{vector.get('library', 'django')}-{scheme.name}-{vector['name']}"


async def insert_user(db: asyncpg.Connection, email: str, password_hash: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    await db.execute(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " VALUES ($1, $2, lower($2), $3, $4, $4)",
        user_id,
        email,
        password_hash,
        CREATED,
    )
    return user_id


async def stored_hash(db: asyncpg.Connection, user_id: uuid.UUID) -> str:
    value: str = await db.fetchval('SELECT password_hash FROM "user" WHERE id = $1', user_id)
    return value


async def assert_logs_in_and_upgrades(
    client: Client, db: asyncpg.Connection, password: str, old_hash: str, rounds: int
) -> None:
    user_id = await insert_user(db, "legacy@example.com", old_hash)
    first = await login(client, "legacy@example.com", password)
    assert first["user"] == {
        "id": str(user_id),
        "email": "legacy@example.com",
        "email_verified": False,
        "created_at": "2020-01-02T03:04:05Z",
    }
    upgraded = await stored_hash(db, user_id)
    assert upgraded != old_hash
    assert upgraded.startswith(f"bcrypt-hmac-sha256$$2b${rounds:02d}$")
    assert verify_password_sync(password, upgraded)
    # The second login verifies the new hash, and leaves it as it is.
    second = await login(client, "legacy@example.com", password)
    assert second["session_id"] != first["session_id"]
    assert await stored_hash(db, user_id) == upgraded


@pytest.mark.parametrize("vector", vectors("bcryptjs"), ids=vector_id)
async def test_bcryptjs_user_logs_in_and_is_upgraded(
    client: Client, db: asyncpg.Connection, vector: dict[str, Any]
) -> None:
    await assert_logs_in_and_upgrades(client, db, vector["password"], vector["hash"], 4)


@pytest.mark.parametrize("vector", vectors("django"), ids=vector_id)
async def test_django_user_logs_in_and_is_upgraded(
    client: Client, db: asyncpg.Connection, vector: dict[str, Any]
) -> None:
    await assert_logs_in_and_upgrades(client, db, vector["password"], vector["hash"], 4)


async def test_raised_cost_is_applied_at_next_login(
    make_client: MakeClient, db: asyncpg.Connection
) -> None:
    client = await make_client(bcrypt_rounds=5)
    old_hash = hash_password_sync("correct horse battery staple", 4)
    await assert_logs_in_and_upgrades(client, db, "correct horse battery staple", old_hash, 5)


async def test_current_hash_is_not_rewritten(client: Client, db: asyncpg.Connection) -> None:
    current = hash_password_sync("correct horse battery staple", 4)
    user_id = await insert_user(db, "current@example.com", current)
    await login(client, "current@example.com", "correct horse battery staple")
    assert await stored_hash(db, user_id) == current


async def test_wrong_password_leaves_imported_hash_alone(
    client: Client, db: asyncpg.Connection
) -> None:
    vector = vectors("bcryptjs")[0]
    user_id = await insert_user(db, "legacy@example.com", vector["hash"])
    response = await client.post(
        "/v1/login", json={"email": "legacy@example.com", "password": "not the password"}
    )
    assert response.status == 401
    assert await error_of(response) == "invalid_credentials"
    assert await stored_hash(db, user_id) == vector["hash"]


async def test_disabled_user_is_refused_and_not_upgraded(
    client: Client, db: asyncpg.Connection
) -> None:
    vector = vectors("bcryptjs")[0]
    user_id = await insert_user(db, "legacy@example.com", vector["hash"])
    await db.execute('UPDATE "user" SET disabled_at = $1 WHERE id = $2', CREATED, user_id)
    response = await client.post(
        "/v1/login", json={"email": "legacy@example.com", "password": vector["password"]}
    )
    assert response.status == 403
    assert await error_of(response) == "account_disabled"
    assert await stored_hash(db, user_id) == vector["hash"]


@pytest.mark.parametrize(
    "stored",
    [
        "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c29tZXNhbHQ$aGFzaA",
        "correct horse battery staple",
        "$2b$10$truncated",
    ],
)
async def test_unknown_scheme_is_invalid_credentials_and_logged(
    client: Client, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture, stored: str
) -> None:
    user_id = await insert_user(db, "odd@example.com", stored)
    with caplog.at_level(logging.ERROR, logger="rotor.passwords"):
        response = await client.post(
            "/v1/login",
            json={"email": "odd@example.com", "password": "correct horse battery staple"},
        )
    assert response.status == 401
    assert await error_of(response) == "invalid_credentials"
    errors = [r for r in caplog.records if r.name == "rotor.passwords"]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert str(user_id) in errors[0].getMessage()
    assert stored not in caplog.text
    assert "correct horse battery staple" not in caplog.text
    assert await stored_hash(db, user_id) == stored
