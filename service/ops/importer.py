"""`rotor import-users`: bring users with their existing password hashes from another system.

The file is JSON Lines (`{"email", "password_hash", "created_at"?, "email_verified"?,
"identities"?}` per line) or CSV with a header row naming those columns (`email_verified`:
true/false, empty for false, a verified user counts as verified since its created_at;
identities: see service/ops/import_identities.py; a user with an identity may have no password
hash). Every row is validated first (the email as the API validates it, a known and well-formed
hash scheme, an RFC 3339 created_at), and each bad one is reported with its line number; the
good ones are then inserted in batches, one transaction per batch. An email that is already
registered, case-insensitively, is skipped and never overwritten (nor given the row's
identities); so is a repeat of an email earlier in the file. No password is hashed here:
imported hashes are verified as they are, and replaced by Rotor's own scheme at each user's
next login.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from tqdm import tqdm

from service.db import identities as identity_queries
from service.db import importing
from service.domain import hash_schemes
from service.ops.import_identities import Identity, identities_of
from service.web.schemas import Email

T = TypeVar("T")
Format = Literal["auto", "jsonl", "csv"]
BATCH_SIZE = 5000
REQUIRED_COLUMNS = ("email", "password_hash")
OPTIONAL_COLUMNS = ("created_at", "email_verified")

# RFC 3339 section 5.6 date-time: a full date, a full time and an explicit offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# The very rule POST /v1/register applies, so an imported user is one the API would accept.
_EMAIL = TypeAdapter(Email)


class ImportFileError(Exception):
    """The file as a whole cannot be read (not UTF-8, no usable CSV header): nothing is imported."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    password_hash: str | None
    created_at: datetime | None
    email_verified: bool = False
    identities: tuple[Identity, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


@dataclass(slots=True)
class ParsedFile:
    rows: list[Row] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # (line, line of the first occurrence) of each repeated email.
    duplicates: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Summary:
    imported: int
    already_registered: int
    duplicates: int
    rejected: int

    @property
    def skipped(self) -> int:
        return self.already_registered + self.duplicates


# --- reading and validating ------------------------------------------------------------------


def detect_format(path: Path, text: str) -> Literal["jsonl", "csv"]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a BOM, as spreadsheet exports write, is not data
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(f"line {line}: not valid UTF-8") from None


def _jsonl_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, "not valid JSON"
            continue
        yield number, record if isinstance(record, dict) else "not a JSON object"


def _csv_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    last_line = 0
    while True:
        start = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFileError(f"line {reader.line_num}: {exc}") from None
        last_line = reader.line_num
        if not values or values == [""]:
            continue  # blank line
        if header is None:
            header = [name.strip().lower() for name in values]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise ImportFileError(f"line {start}: the CSV header lacks {', '.join(missing)}")
            continue
        if len(values) != len(header):
            yield start, f"expected {len(header)} fields, found {len(values)}"
            continue
        record: dict[str, Any] = dict(zip(header, values, strict=True))
        for name in OPTIONAL_COLUMNS:
            if record.get(name) == "":
                record[name] = None  # an empty cell is an absent value
        yield start, record
    if header is None:
        raise ImportFileError("the CSV file has no header row")


def _email(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        raise ValueError("must be an email address") from None


def _password_hash(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if hash_schemes.well_formed(value):
        return value
    scheme, _ = hash_schemes.split(value)
    if scheme is None:
        tags = ", ".join(f"{name}$" for name in sorted(hash_schemes.SCHEMES) if name != "bcrypt")
        raise ValueError(f"unknown hash scheme (known: $2a$, $2b$, $2y$ bcrypt; {tags})")
    raise ValueError(f"not a well-formed {scheme.name} hash")


def _created_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp, like 2024-05-01T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a real date and time") from None
    return parsed.astimezone(UTC)


def _email_verified(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # CSV cells are text
    raise ValueError("must be true or false")


def validate(line: int, record: dict[str, Any]) -> Row | Rejection:
    """One record as a Row, or a Rejection naming every bad field (never echoing a value)."""
    problems: list[str] = []

    def check(name: str, parse: Callable[[object], T], required: bool = True) -> T | None:
        value = record.get(name)
        if value is None and required:
            problems.append(f"{name}: is required")
            return None
        try:
            return parse(value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            return None

    email = check("email", _email)
    identities = check("identities", lambda _: identities_of(record), required=False) or ()
    # No password hash is fine for a user who signs in with an identity provider.
    password_hash = check("password_hash", _password_hash, required=not identities)
    if record.get("password_hash") in (None, "") and identities:
        problems = [p for p in problems if not p.startswith("password_hash")]
        password_hash = None
    created_at = check("created_at", _created_at, required=False)
    email_verified = check("email_verified", _email_verified, required=False)
    if problems or email is None:
        return Rejection(line, "; ".join(problems))
    return Row(line, email, password_hash, created_at, bool(email_verified), identities)


def parse(
    text: str, file_format: Literal["jsonl", "csv"], bar_file: TextIO | None = None
) -> ParsedFile:
    """Every row validated, repeats of an email set aside; a progress bar on `bar_file`."""
    records = _jsonl_records(text) if file_format == "jsonl" else _csv_records(text)
    parsed = ParsedFile()
    first_line: dict[str, int] = {}
    bar = tqdm(records, desc="validating", unit=" rows", file=bar_file, disable=bar_file is None)
    for line, record in bar:
        result = validate(line, record) if isinstance(record, dict) else Rejection(line, record)
        if isinstance(result, Rejection):
            parsed.rejected.append(result)
            continue
        key = result.email.lower()  # the unique index is on lower(email)
        if key in first_line:
            parsed.duplicates.append((line, first_line[key]))
            continue
        first_line[key] = line
        parsed.rows.append(result)
    return parsed


# --- writing ---------------------------------------------------------------------------------


async def store(
    engine: AsyncEngine,
    rows: Sequence[Row],
    now: datetime,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    bar_file: TextIO | None = None,
) -> tuple[int, int]:
    """Insert the rows, one transaction per batch: (imported, already registered). With
    dry_run, nothing is written and the counts say what an import would do now."""
    imported = 0
    label = "checking" if dry_run else "importing"
    with tqdm(
        total=len(rows), desc=label, unit=" users", file=bar_file, disable=bar_file is None
    ) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            if dry_run:
                async with engine.connect() as conn:
                    existing = await importing.count_existing_emails(conn, [r.email for r in batch])
                imported += len(batch) - existing
            else:
                values = [_user_values(row, now) for row in batch]
                async with engine.begin() as conn:
                    imported += await importing.insert_users_skipping_existing(conn, values)
                    linked = [
                        {"provider": provider, "subject": subject, "user_id": user["id"]}
                        for row, user in zip(batch, values, strict=True)
                        for provider, subject in row.identities
                    ]
                    await identity_queries.insert_imported_identities(conn, linked, now)
            bar.update(len(batch))
    return imported, len(rows) - imported


def _user_values(row: Row, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "email": row.email,
        "password_hash": row.password_hash,
        "created_at": row.created_at or now,
        "updated_at": now,
        "email_verified_at": (row.created_at or now) if row.email_verified else None,
    }


# --- the command -----------------------------------------------------------------------------


def read(path: Path, file_format: Format = "auto", bar_file: TextIO | None = None) -> ParsedFile:
    try:
        text = decode(path.read_bytes())
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    resolved = detect_format(path, text) if file_format == "auto" else file_format
    return parse(text, resolved, bar_file)


def import_users(
    engine_factory: Callable[[], AsyncEngine],
    path: Path,
    *,
    file_format: Format = "auto",
    dry_run: bool = False,
    now: datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress: bool | None = None,
) -> Summary:
    """Validate and import `path`: each rejected or repeated row is reported on `err`, the
    summary on `out`. A progress bar is drawn on `err` only when it is a terminal."""
    out = out or sys.stdout
    err = err or sys.stderr
    bar_file = err if (err.isatty() if progress is None else progress) else None
    parsed = read(path, file_format, bar_file)
    for rejection in parsed.rejected:
        print(f"{path}:{rejection.line}: rejected: {rejection.reason}", file=err)
    for line, first in parsed.duplicates:
        print(f"{path}:{line}: skipped: the same email as line {first}", file=err)

    async def write() -> tuple[int, int]:
        engine = engine_factory()
        try:
            return await store(
                engine, parsed.rows, now or datetime.now(UTC), dry_run=dry_run, bar_file=bar_file
            )
        finally:
            await engine.dispose()

    imported, existing = asyncio.run(write())
    summary = Summary(imported, existing, len(parsed.duplicates), len(parsed.rejected))
    _print_summary(summary, dry_run, out)
    return summary


def _print_summary(summary: Summary, dry_run: bool, out: TextIO) -> None:
    prefix = "dry run, nothing written; would have " if dry_run else ""
    print(
        f"{prefix}imported: {summary.imported}, skipped: {summary.skipped} "
        f"({summary.already_registered} already registered, {summary.duplicates} repeated in "
        f"the file), rejected: {summary.rejected}",
        file=out,
    )
