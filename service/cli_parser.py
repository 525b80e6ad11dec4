"""The `rotor` command's arguments and help texts (the commands themselves are in service/cli.py).

Each subcommand's help names the environment variables it reads; the list for `serve` comes from
service/config.py itself, so a new variable shows up here without an edit.
"""

from __future__ import annotations

import argparse
import textwrap
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from service.config import JWT_ALGORITHMS, variables
from service.ops import staff_command

# What the commands that only talk to the database read (besides validating every variable).
DATABASE_VARIABLES = (
    "DATABASE_URL",
    "ROTOR_DATA_DIR",
    "ROTOR_DB_POOL_SIZE",
    "ROTOR_DB_CONNECT_TIMEOUT",
    "ROTOR_DB_STATEMENT_TIMEOUT",
    "ROTOR_DB_PREPARED_STATEMENT_CACHE",
)
MIGRATE_VARIABLES = ("DATABASE_URL", "ROTOR_DATA_DIR")
# The lifetimes decide what has ended: use the server's values.
PRUNE_VARIABLES = (
    *DATABASE_VARIABLES,
    "AUTH_SESSION_IDLE_TTL",
    "AUTH_LOGIN_WINDOW",
    "AUTH_EVENT_RETENTION",
)

_EMBEDDED = (
    "With no DATABASE_URL, the embedded PostgreSQL in $ROTOR_DATA_DIR/postgres is started for the "
    "command and stopped after it."
)
_VALIDATED = (
    "Every configuration variable is validated first: an invalid one stops the command with "
    "exit status 2 and one line naming it."
)


def rotor_version() -> str:
    try:
        return version("rotor")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def environment(names: tuple[str, ...], note: str = "") -> str:
    """An epilog naming the variables a command reads."""
    return f"environment variables read: {', '.join(names)}.\n\n{note}".strip()


def _wrapped(text: str) -> str:
    """Paragraphs (blank-line separated) filled to a terminal's width."""
    return "\n\n".join(textwrap.fill(part, width=88) for part in text.split("\n\n"))


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return value


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 1 and 65535, got {raw!r}")
    return value


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise argparse.ArgumentTypeError("expected a host name or address")
    return raw.strip()


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=_wrapped(description),
        epilog=_wrapped(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = _command(
        commands,
        "serve",
        "start the HTTP server",
        "Start the HTTP server. With DATABASE_URL set, its schema must be at the newest "
        "migration (else exit 3: run `rotor migrate` first). " + _EMBEDDED + " On SIGTERM "
        "in-flight requests get 8 seconds to finish, then the process exits 0.",
        environment(variables(), "(serve reads every configuration variable.) " + _VALIDATED),
    )
    serve.add_argument(
        "--host",
        type=_non_empty,
        help="address to listen on; overrides AUTH_HOST (default 127.0.0.1)",
    )
    serve.add_argument(
        "--port", type=_port, help="port to listen on; overrides AUTH_PORT (default 8080)"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); default 1, served in-process",
    )


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = _command(
        commands,
        "migrate",
        "bring the database to the newest schema",
        "Bring the database to the newest schema (the same as `alembic upgrade head` in a "
        "checkout). Parallel runs wait for each other on an advisory lock; at the newest "
        "schema it does nothing. Exit 0 done, 2 configuration error, 3 database unreachable. "
        + _EMBEDDED,
        environment(MIGRATE_VARIABLES, _VALIDATED),
    )
    migrate.add_argument(
        "--sql", action="store_true", help="print the SQL for review instead of applying it"
    )


def _add_prune(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _command(
        commands,
        "prune",
        "delete ended sessions (with their refresh tokens), stale login-failure counters and "
        "audit events past their retention",
        "Delete what has ended, in short batches: sessions past their absolute or idle end "
        "(with all their refresh tokens), login-failure counters whose window is over, and "
        "audit events older than AUTH_EVENT_RETENTION days. Prints one line of counts. Safe to "
        "run from several places at once. The schema must be at the newest migration (else "
        "exit 3). " + _EMBEDDED,
        environment(PRUNE_VARIABLES, "Use the server's values. " + _VALIDATED),
    )


def _add_import(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imports = _command(
        commands,
        "import-users",
        "import users with their password hashes from another system",
        "Import users with their existing password hashes (bcrypt, Django bcrypt_sha256 or "
        "pbkdf2_sha256, Rotor's own). Every row is checked before anything is written; an "
        "email already registered is skipped, never overwritten, so a rerun is safe. Exit 0 "
        "when no row was rejected, 1 when some were (the valid ones are imported) or the file "
        "cannot be used, 3 when the database cannot be reached. " + _EMBEDDED,
        environment(DATABASE_VARIABLES, _VALIDATED),
    )
    imports.add_argument(
        "file", type=Path, help="JSON Lines, or CSV with a header row (email, password_hash)"
    )
    imports.add_argument(
        "--format",
        choices=["auto", "jsonl", "csv"],
        default="auto",
        help="file format; auto (the default) goes by the extension (.jsonl/.ndjson/.json or "
        ".csv), then by the content",
    )
    imports.add_argument(
        "--dry-run", action="store_true", help="validate and count the rows, write nothing"
    )


def _add_outbox(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = _command(
        commands,
        "outbox",
        "list the messages waiting in the outbox (pending and failed, with their text)",
        "List the pending and failed messages of the outbox (verification, reset and "
        "password-changed emails) with their text, codes included: for local development with no "
        "mail back end configured, and for operators. " + _EMBEDDED,
        "environment variables read: DATABASE_URL, AUTH_MAIL_RETRY_FOR (with --retry-failed).",
    )
    outbox.add_argument(
        "--retry-failed",
        action="store_true",
        help="queue every failed message again, for another AUTH_MAIL_RETRY_FOR seconds",
    )


def _add_email_collisions(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    collisions = _command(
        commands,
        "email-collisions",
        "list accounts whose emails were one canonical address before the rule, or resolve one",
        "List the groups of accounts whose addresses have one canonical form (trimmed, NFKC, "
        "case-folded, trailing dot dropped) but were registered before Rotor compared emails that "
        "way; each stays reachable by its exact address until resolved. --keep gives one account "
        "the canonical address. " + _EMBEDDED,
        "environment variables read: DATABASE_URL.",
    )
    collisions.add_argument(
        "--keep",
        type=uuid.UUID,
        metavar="USER_ID",
        help="give this account its canonical email and every look-alike of it",
    )


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = _command(
        commands,
        "keys",
        "manage signing keys",
        "Manage the keys that sign access tokens.",
        "environment variables read: none.",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = _command(
        keys_commands,
        "generate",
        "write a new private key (PEM)",
        "Write a new private key in PEM (PKCS#8), for AUTH_JWT_PRIVATE_KEY_FILE. A file is "
        "created with mode 0600 and never overwritten.",
        "environment variables read: none.",
    )
    generate.add_argument(
        "--alg",
        choices=[a for a in JWT_ALGORITHMS if a != "HS256"],
        required=True,
        help="EdDSA (Ed25519), ES256 (P-256) or RS256 (3072-bit RSA)",
    )
    generate.add_argument("--out", type=Path, help="file to create (default: standard output)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="rotor",
        description="Rotor authentication service: JWT access tokens, rotating refresh tokens, "
        "one session per device. `python -m service` is the same program.",
        epilog="Run `rotor COMMAND --help` for a command's options and the environment "
        "variables it reads.",
    )
    root.add_argument("--version", action="version", version=f"rotor {rotor_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_migrate(commands)
    _add_prune(commands)
    _add_import(commands)
    _add_keys(commands)
    _add_outbox(commands)
    _add_email_collisions(commands)
    staff_command.add_parser(commands)
    return root
