"""`rotor import-users`: JSON Lines and CSV, bad rows by line number, skips, dry runs, exit codes.

The command runs in a worker thread (it starts its own event loop) against this run's database.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from helpers import Client, login

from service import cli
from service.config import Settings
from service.db.engine import create_engine
from service.ops import importer

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "bcryptjs.json").read_text())["vectors"]
DJANGO = json.loads((ROOT / "tests" / "vectors" / "django.json").read_text())["vectors"]
ASCII = VECTORS[0]  # bcryptjs 2.x, $2a$10$, "correct horse battery staple"
HASH = ASCII["hash"]

Run = Callable[..., Any]


@pytest.fixture
def run(database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`rotor import-users ARGS` on this run's (emptied) database: its exit status."""
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def invoke(*args: str) -> int:
        return await asyncio.to_thread(cli.main, ["import-users", *args])

    return invoke


def jsonl(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


async def users(db: asyncpg.Connection) -> dict[str, Any]:
    rows = await db.fetch('SELECT email, password_hash, created_at, updated_at FROM "user"')
    return {row["email"]: row for row in rows}


async def test_jsonl_file_is_imported_with_hashes_unchanged(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jsonl(
        tmp_path / "users.jsonl",
        {"email": "Ada@Example.com", "password_hash": HASH, "created_at": "2019-05-06T07:08:09Z"},
        {"email": " bob@example.com ", "password_hash": DJANGO[0]["hash"], "name": "ignored"},
        {
            "email": "cy@example.com",
            "password_hash": DJANGO[1]["hash"],
            "created_at": "2020-01-01T12:00:00.5+02:00",
        },
    )
    assert await run(str(path)) == 0
    stored = await users(db)
    assert set(stored) == {"Ada@Example.com", "bob@example.com", "cy@example.com"}
    assert stored["Ada@Example.com"]["password_hash"] == HASH
    assert stored["bob@example.com"]["password_hash"] == DJANGO[0]["hash"]
    assert stored["Ada@Example.com"]["created_at"] == datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert stored["cy@example.com"]["created_at"] == datetime(
        2020, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC
    )
    # No created_at: the user is created now.
    bob = stored["bob@example.com"]
    assert bob["created_at"] == bob["updated_at"]
    assert bob["created_at"] > datetime(2025, 1, 1, tzinfo=UTC)
    out = capsys.readouterr().out
    assert "imported: 3, skipped: 0" in out
    assert "rejected: 0" in out


async def test_csv_file_with_header_is_imported(
    run: Run, db: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "\ufeffid,email,password_hash,created_at\n"  # a BOM and an extra column, as exports have
        f'1,ada@example.com,"{HASH}",2019-05-06T07:08:09Z\n'
        f"2,bob@example.com,{VECTORS[3]['hash']},\n",
        encoding="utf-8",
    )
    assert await run(str(path)) == 0
    stored = await users(db)
    assert stored["ada@example.com"]["password_hash"] == HASH
    assert stored["ada@example.com"]["created_at"] == datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert stored["bob@example.com"]["password_hash"] == VECTORS[3]["hash"]


async def test_bad_jsonl_rows_are_reported_by_line_and_the_rest_imported(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "users.jsonl"
    lines = [
        json.dumps({"email": "ok@example.com", "password_hash": HASH}),  # 1
        "",  # 2: blank lines are allowed
        json.dumps({"email": "not-an-email", "password_hash": HASH}),  # 3
        json.dumps({"email": "md5@example.com", "password_hash": "md5$ab$cd"}),  # 4
        json.dumps({"email": "short@example.com", "password_hash": "$2b$10$short"}),  # 5
        json.dumps({"email": "t@example.com", "password_hash": HASH, "created_at": "2024-01-01"}),
        "{not json",  # 7
        "[1, 2]",  # 8
        json.dumps({"password_hash": HASH}),  # 9
        json.dumps({"email": 5, "password_hash": HASH}),  # 10
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert await run(str(path)) == 1
    err = capsys.readouterr().err
    expected = {
        3: "email: must be an email address",
        4: "password_hash: unknown hash scheme",
        5: "password_hash: not a well-formed bcrypt hash",
        6: "created_at: must be an RFC 3339 timestamp",
        7: "not valid JSON",
        8: "not a JSON object",
        9: "email: is required",
        10: "email: must be a string",
    }
    for line, reason in expected.items():
        assert f"{path}:{line}: rejected: {reason}" in err
    assert f"{path}:1:" not in err
    assert HASH not in err  # values are never echoed
    assert set(await users(db)) == {"ok@example.com"}


async def test_bad_csv_rows_are_reported_by_their_first_line(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "email,password_hash,created_at,note\n"  # 1
        f'ok@example.com,{HASH},,"a note\nover two lines"\n'  # 2-3
        f"bad,{HASH},,\n"  # 4
        "too,few\n"  # 5
        f"late@example.com,{HASH},2024-13-01T00:00:00Z,\n",  # 6
        encoding="utf-8",
    )
    assert await run(str(path)) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: rejected: email: must be an email address" in err
    assert f"{path}:5: rejected: expected 4 fields, found 2" in err
    assert f"{path}:6: rejected: created_at: must be a real date and time" in err
    assert set(await users(db)) == {"ok@example.com"}


async def test_existing_emails_are_skipped_never_overwritten(
    run: Run,
    db: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = jsonl(tmp_path / "first.jsonl", {"email": "Ada@example.com", "password_hash": HASH})
    assert await run(str(first)) == 0
    second = jsonl(
        tmp_path / "second.jsonl",
        {"email": "ada@EXAMPLE.com", "password_hash": VECTORS[3]["hash"]},  # 1: exists
        {"email": "bob@example.com", "password_hash": HASH},  # 2
        {"email": "BOB@example.com", "password_hash": VECTORS[3]["hash"]},  # 3: repeats 2
    )
    capsys.readouterr()
    assert await run(str(second)) == 0
    captured = capsys.readouterr()
    assert "imported: 1, skipped: 2 (1 already registered, 1 repeated in the file)" in captured.out
    assert f"{second}:3: skipped: the same email as line 2" in captured.err
    stored = await users(db)
    assert set(stored) == {"Ada@example.com", "bob@example.com"}
    assert stored["Ada@example.com"]["password_hash"] == HASH
    assert stored["bob@example.com"]["password_hash"] == HASH


async def test_dry_run_writes_nothing(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await db.execute(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " VALUES (gen_random_uuid(), 'ada@example.com', 'ada@example.com', $1, now(), now())",
        HASH,
    )
    path = jsonl(
        tmp_path / "users.jsonl",
        {"email": "ADA@example.com", "password_hash": VECTORS[3]["hash"]},
        {"email": "bob@example.com", "password_hash": HASH},
        {"email": "cy@example.com", "password_hash": HASH},
    )
    assert await run(str(path), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run, nothing written; would have imported: 2, skipped: 1 (1 already" in out
    stored = await users(db)
    assert set(stored) == {"ada@example.com"}
    assert stored["ada@example.com"]["password_hash"] == HASH


async def test_unreadable_file_imports_nothing(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_column = tmp_path / "users.csv"
    no_column.write_text(f"email,hash\nada@example.com,{HASH}\n", encoding="utf-8")
    assert await run(str(no_column)) == 1
    assert "line 1: the CSV header lacks password_hash; nothing was imported" in (
        capsys.readouterr().err
    )
    not_utf8 = tmp_path / "users.jsonl"
    not_utf8.write_bytes(
        json.dumps({"email": "a@example.com", "password_hash": HASH}).encode() + b'\n{"\xff"}\n'
    )
    assert await run(str(not_utf8)) == 1
    assert "line 2: not valid UTF-8" in capsys.readouterr().err
    assert await run(str(tmp_path / "missing.jsonl")) == 1
    assert await users(db) == {}


async def test_exported_express_users_log_in_unchanged(
    run: Run, client: Client, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Done when: a file exported from an Express + bcryptjs app logs in on Rotor."""
    path = jsonl(
        tmp_path / "express.jsonl",
        *(
            {"email": f"{v['library'][-1]}-{v['name']}@example.com", "password_hash": v["hash"]}
            for v in VECTORS
        ),
    )
    assert await run(str(path)) == 0
    for vector in VECTORS:
        email = f"{vector['library'][-1]}-{vector['name']}@example.com"
        tokens = await login(client, email, vector["password"])
        assert tokens["user"]["email"] == email
    stored = await users(db)
    assert all(row["password_hash"].startswith("bcrypt-hmac-sha256$") for row in stored.values())


def test_command_exits_non_zero_on_rejected_rows(database_url: str, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "users.jsonl", {"email": "nope", "password_hash": HASH})
    result = subprocess.run(
        [sys.executable, "-m", "service", "import-users", str(path)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"{path}:1: rejected: email: must be an email address" in result.stderr
    assert (
        "imported: 0, skipped: 0 (0 already registered, 0 repeated in the file), rejected: 1"
        in (result.stdout)
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("err_is_terminal", [True, False])
async def test_progress_bar_only_on_a_terminal(
    database_url: str,
    db: asyncpg.Connection,
    settings: Settings,
    tmp_path: Path,
    err_is_terminal: bool,
) -> None:
    path = jsonl(tmp_path / "users.jsonl", {"email": "ada@example.com", "password_hash": HASH})
    err = Terminal() if err_is_terminal else io.StringIO()
    out = io.StringIO()
    summary = await asyncio.to_thread(
        importer.import_users,
        lambda: create_engine(settings, database_url),
        path,
        out=out,
        err=err,
    )
    assert summary.imported == 1
    assert ("importing: 100%" in err.getvalue()) is err_is_terminal
    assert ("validating" in err.getvalue()) is err_is_terminal
    assert "imported: 1," in out.getvalue()


async def test_users_may_carry_identities_and_then_need_no_password(
    run: Run, db: asyncpg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await db.execute(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " VALUES (gen_random_uuid(), 'taken@example.com', 'taken@example.com', $1, now(), now())",
        HASH,
    )
    path = jsonl(
        tmp_path / "users.jsonl",
        {"email": "ada@example.com", "identities": [{"provider": "apple", "subject": "001.a"}]},
        {
            "email": "bob@example.com",
            "password_hash": HASH,
            "identities": [
                {"provider": "apple", "subject": "001.b"},
                {"provider": "google", "subject": "1101"},
            ],
        },
        # Skipped (the email is taken): its identity must not reach the existing account.
        {"email": "taken@example.com", "identities": [{"provider": "apple", "subject": "001.c"}]},
        {"email": "cy@example.com"},  # neither a password nor an identity
        {"email": "dee@example.com", "identities": [{"provider": "Apple!", "subject": "x"}]},
    )
    assert await run(str(path)) == 1  # two rows rejected; the others imported
    rows = await db.fetch(
        "SELECT u.email, i.provider, i.subject, u.password_hash IS NULL AS no_password"
        ' FROM identity i JOIN "user" u ON u.id = i.user_id ORDER BY i.subject'
    )
    assert [tuple(row) for row in rows] == [
        ("ada@example.com", "apple", "001.a", True),
        ("bob@example.com", "apple", "001.b", False),
        ("bob@example.com", "google", "1101", False),
    ]
    err = capsys.readouterr().err
    assert ":4: rejected: password_hash: is required" in err
    assert ":5: rejected: identities: provider must be" in err
