"""`rotor import-users` rows may carry `email_verified` (JSON true/false, CSV true/false)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from service import cli
from service.ops import importer

HASH = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "bcryptjs.json").read_text())[
    "vectors"
][0]["hash"]


async def test_email_verified_is_imported_from_jsonl_and_csv(
    database_url: str, db: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    lines = [
        {
            "email": "yes@example.com",
            "password_hash": HASH,
            "email_verified": True,
            "created_at": "2024-05-01T12:00:00Z",
        },
        {"email": "no@example.com", "password_hash": HASH, "email_verified": False},
        {"email": "unset@example.com", "password_hash": HASH},
    ]
    jsonl = tmp_path / "users.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    csv = tmp_path / "users.csv"
    csv.write_text(
        "email,password_hash,email_verified\n"
        f"csv-yes@example.com,{HASH},true\ncsv-empty@example.com,{HASH},\n"
    )
    for path in (jsonl, csv):
        assert await asyncio.to_thread(cli.main, ["import-users", str(path)]) == 0
    rows = await db.fetch('SELECT email, created_at, email_verified_at FROM "user"')
    verified = {row["email"]: row["email_verified_at"] for row in rows}
    # Verified since its created_at: the address was proven before it came here.
    assert verified["yes@example.com"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert {email for email, at in verified.items() if at is not None} == {
        "yes@example.com",
        "csv-yes@example.com",
    }


def test_a_bad_email_verified_value_is_rejected_by_line() -> None:
    result = importer.validate(
        3, {"email": "a@example.com", "password_hash": HASH, "email_verified": "maybe"}
    )
    assert isinstance(result, importer.Rejection)
    assert result.reason == "email_verified: must be true or false"
