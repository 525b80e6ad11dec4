"""The command line: `rotor serve`, `migrate`, `keys generate` (the same as `python -m service`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from service.config import JWT_ALGORITHMS, ConfigError, Settings, load_settings
from service.db.engine import async_url
from service.keys import generate_private_key_pem, load_key_set
from service.migrate import current_revision, head_revision, upgrade
from service.web.app import create_app, handler_args
from service.workers import WorkerFailed, run, supervise

logger = logging.getLogger("rotor")

EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_WORKER = 4
SHUTDOWN_TIMEOUT = 10.0


class CommandError(Exception):
    """A failure to report in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def database(settings: Settings) -> Iterator[tuple[str, bool]]:
    """The database URL to use, and whether it is the embedded one (started here, stopped after)."""
    if settings.database_url is not None:
        yield settings.database_url, False
        return
    from service.embedded import EmbeddedPostgres, EmbeddedPostgresError

    embedded = EmbeddedPostgres(settings.data_dir.resolve() / "postgres")
    try:
        url = embedded.start()
    except EmbeddedPostgresError as exc:
        raise CommandError(f"embedded PostgreSQL: {exc}", EXIT_DATABASE) from None
    logger.info("using the embedded PostgreSQL in %s", settings.data_dir / "postgres")
    try:
        yield url, True
    finally:
        embedded.stop()


async def _schema_revision(database_url: str) -> str | None:
    engine = create_async_engine(async_url(database_url), connect_args={"timeout": 10})
    try:
        async with engine.connect() as conn:
            return await current_revision(conn)
    finally:
        await engine.dispose()


def schema_revision(database_url: str) -> str | None:
    try:
        return asyncio.run(_schema_revision(database_url))
    except (OSError, TimeoutError, Exception) as exc:
        raise CommandError(
            f"cannot reach the database at DATABASE_URL: {type(exc).__name__}", EXIT_DATABASE
        ) from None


def serve(settings: Settings, workers: int = 1) -> None:
    keys = load_key_set(settings)
    with database(settings) as (url, embedded):
        if embedded:
            upgrade(url)
        else:
            current, head = schema_revision(url), head_revision()
            if current != head:
                raise CommandError(
                    f"the database schema is at {current or 'no revision'}, this code needs "
                    f"{head}: run `rotor migrate` first",
                    EXIT_DATABASE,
                )

        def serve_one() -> None:
            run(
                create_app(settings, url, keys),
                host=settings.host,
                port=settings.port,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
                handler_args=handler_args(),
                reuse_port=workers > 1,
            )

        if workers == 1:
            serve_one()
            return
        # The database is started and migrated once, here; each worker builds its own app.
        try:
            supervise(workers, serve_one, SHUTDOWN_TIMEOUT)
        except WorkerFailed as exc:
            raise CommandError(str(exc), EXIT_WORKER) from None


def migrate(settings: Settings, sql_only: bool) -> None:
    with database(settings) as (url, _):
        try:
            upgrade(url, sql_only=sql_only)
        except (OSError, TimeoutError) as exc:
            raise CommandError(
                f"cannot reach the database at DATABASE_URL: {type(exc).__name__}", EXIT_DATABASE
            ) from None
    if not sql_only:
        logger.info("the database is at the newest schema (%s)", head_revision())


def generate_key(alg: str, output: Path | None) -> None:
    pem = generate_private_key_pem(alg)
    if output is None:
        sys.stdout.write(pem.decode("ascii"))
        return
    output.touch(mode=0o600, exist_ok=False)
    output.write_bytes(pem)
    logger.info("wrote a new %s private key to %s", alg, output)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="rotor", description="Rotor authentication service")
    commands = root.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="start the HTTP server")
    serve_parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); default 1, served in-process",
    )
    migrate_parser = commands.add_parser("migrate", help="bring the database to the newest schema")
    migrate_parser.add_argument(
        "--sql", action="store_true", help="print the SQL for review instead of applying it"
    )
    keys_parser = commands.add_parser("keys", help="manage signing keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    generate = keys_commands.add_parser("generate", help="write a new private key (PEM)")
    generate.add_argument(
        "--alg", choices=[a for a in JWT_ALGORITHMS if a != "HS256"], required=True
    )
    generate.add_argument("--out", type=Path, help="file to create (default: standard output)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "keys":
            generate_key(args.alg, args.out)
            return 0
        settings = load_settings()
        if args.command == "serve":
            serve(settings, args.workers)
        elif args.command == "migrate":
            migrate(settings, args.sql)
    except ConfigError as exc:
        print(f"rotor: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"rotor: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
