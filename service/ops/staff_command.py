"""`rotor staff add|remove|list`: the support console's staff accounts.

Reads DATABASE_URL (or starts the embedded PostgreSQL) and AUTH_BCRYPT_ROUNDS like the server.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from datetime import UTC, datetime
from typing import TextIO

from service.config import Settings
from service.db import staff as staff_queries
from service.db.engine import create_engine
from service.domain.console import ROLES
from service.domain.passwords import hash_password_sync

MIN_PASSWORD = 12
MAX_PASSWORD = 256
EXIT_FAILED = 1


class StaffCommandError(Exception):
    """A refusal to print in one line (exit status 1)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    staff = commands.add_parser(
        "staff",
        help="manage support console staff accounts (reads DATABASE_URL, AUTH_BCRYPT_ROUNDS)",
    )
    actions = staff.add_subparsers(dest="staff_command", required=True)
    add = actions.add_parser(
        "add",
        help="create a staff account; the password is read from standard input, or asked for "
        "when it is a terminal",
    )
    add.add_argument("email", help="the staff member's email (their sign-in name)")
    add.add_argument(
        "--role",
        choices=ROLES,
        required=True,
        help="support: find users, revoke sessions; admin: also disable and enable accounts",
    )
    remove = actions.add_parser("remove", help="delete a staff account and its console sessions")
    remove.add_argument("email", help="the staff member's email")
    actions.add_parser("list", help="print every staff account: email, role, created")


def read_password(stdin: TextIO = sys.stdin) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise StaffCommandError("the two passwords differ; nothing was created")
        password = first
    else:
        password = stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StaffCommandError(
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters; nothing was created"
        )
    return password


def _email(raw: str) -> str:
    email = raw.strip()
    local, _, domain = email.rpartition("@")
    if not local or not domain or any(ch.isspace() for ch in email):
        raise StaffCommandError(f"{raw!r} is not an email address")
    return email


async def _run(args: argparse.Namespace, settings: Settings, url: str) -> str:
    engine = create_engine(settings, url)
    try:
        if args.staff_command == "add":
            email = _email(args.email)
            password = read_password()
            hashed = await asyncio.to_thread(hash_password_sync, password, settings.bcrypt_rounds)
            async with engine.begin() as conn:
                created = await staff_queries.insert_staff(
                    conn, uuid.uuid4(), email, hashed, args.role, datetime.now(UTC)
                )
            if not created:
                raise StaffCommandError(f"a staff account {email} exists already")
            return f"added {email} ({args.role})"
        if args.staff_command == "remove":
            async with engine.begin() as conn:
                removed = await staff_queries.delete_staff(conn, args.email.strip())
            if not removed:
                raise StaffCommandError(f"no staff account {args.email.strip()}")
            return f"removed {args.email.strip()}"
        async with engine.connect() as conn:
            rows = await staff_queries.list_staff(conn)
        lines = [
            f"{row.email}\t{row.role}\t{row.created_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
            for row in rows
        ]
        return "\n".join(lines) if lines else "no staff accounts"
    finally:
        await engine.dispose()


def run(args: argparse.Namespace, settings: Settings, url: str) -> int:
    """Run one `rotor staff` subcommand; its exit status."""
    try:
        print(asyncio.run(_run(args, settings, url)))
    except StaffCommandError as exc:
        print(f"rotor staff: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0
