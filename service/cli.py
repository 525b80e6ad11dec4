"""The command line: `rotor serve`, `migrate`, `prune`, `keys generate`, `import-users` (the
same as `python -m service`). The arguments and help texts are in service/cli_parser.py."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from service.cli_parser import parser
from service.config import ConfigError, Settings, load_settings, short_lifetimes
from service.db.engine import create_command_engine, create_engine
from service.db.url import parse_database_url
from service.domain.keys import generate_private_key_pem, load_key_set
from service.flows.pruning import PruneCounts, Pruner
from service.ops import email_collisions, importer, outbox_command, staff_command
from service.ops.logs import configure_logging
from service.ops.metrics_workers import multiprocess_directory, worker_exited
from service.ops.migrate import current_revision, head_revision, upgrade
from service.ops.workers import WorkerFailed, run, supervise
from service.settings.oauth import issuer_warning
from service.web.app import create_app, handler_args

logger = logging.getLogger("rotor")

EXIT_REJECTED = 1
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_WORKER = 4
# On SIGTERM, in-flight requests get this long to finish before they are cancelled (their
# transactions roll back), then the pool closes and the process exits 0: all within the 10 s
# that `docker stop` waits before SIGKILL.
SHUTDOWN_TIMEOUT = 8.0


class CommandError(Exception):
    """A failure to report in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# SQLSTATEs (or their classes) that mean "could not get a working connection".
_CONNECT_SQLSTATES = ("08", "28", "3D000", "53300", "57P03")


def _connection_problem(exc: BaseException) -> str | None:
    """Why the database could not be reached, or None when `exc` is about something else."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or ""
        if state.startswith(_CONNECT_SQLSTATES):
            # The server's own words ('database "x" does not exist'); it never echoes a password.
            return str(exc.orig) or state
    return None


@contextmanager
def reaching_database(url: str) -> Iterator[None]:
    """Turn a failure to connect to `url` into one line (host, port, database and the reason)."""
    try:
        yield
    except (OSError, TimeoutError, DBAPIError) as exc:
        reason = _connection_problem(exc)
        if reason is None:
            raise
        where = parse_database_url(url).describe()
        reason = " ".join(reason.split())
        raise CommandError(
            f"cannot connect to the database at DATABASE_URL ({where}): {reason}", EXIT_DATABASE
        ) from None


@contextmanager
def database(settings: Settings) -> Iterator[tuple[str, bool]]:
    """The database URL to use, and whether it is the embedded one (started here, stopped after)."""
    if settings.database_url is not None:
        yield settings.database_url, False
        return
    from service.ops.embedded import EmbeddedPostgres, EmbeddedPostgresError

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
    engine = create_command_engine(database_url, 10)
    try:
        async with engine.connect() as conn:
            return await current_revision(conn)
    finally:
        await engine.dispose()


def schema_revision(database_url: str) -> str | None:
    with reaching_database(database_url):
        return asyncio.run(_schema_revision(database_url))


def require_current_schema(url: str) -> None:
    current, head = schema_revision(url), head_revision()
    if current != head:
        raise CommandError(
            f"the database schema is at {current or 'no revision'}, this code needs "
            f"{head}: run `rotor migrate` first",
            EXIT_DATABASE,
        )


def ready_schema(url: str, embedded: bool) -> None:
    """The embedded database migrates itself; any other must already be at the newest schema."""
    if embedded:
        upgrade(url)
    else:
        require_current_schema(url)


def serve(settings: Settings, workers: int = 1) -> None:
    keys = load_key_set(settings)
    for name in short_lifetimes(settings):
        logger.warning("%s is under a minute: a value for testing expiry, not for production", name)
    with database(settings) as (url, embedded):
        ready_schema(url, embedded)
        # Once the start can no longer fail: a refused start stays one line.
        if warning := issuer_warning(settings.issuer):
            logger.warning("%s", warning)

        def serve_one() -> None:
            run(
                create_app(settings, url, keys),
                host=settings.host,
                port=settings.port,
                # aiohttp waits this long for in-flight handlers, then as long again (having only
                # cancelled their body reads) before it cancels them: half, to keep the total.
                shutdown_timeout=SHUTDOWN_TIMEOUT / 2,
                handler_args=handler_args(settings.http.request_read_timeout),
                reuse_port=workers > 1,
            )

        if workers == 1:
            serve_one()
            return
        # The database is started and migrated once, here; each worker builds its own app.
        with ExitStack() as stack:
            on_exit = None
            if settings.metrics:
                # Every worker writes its metrics where a scrape of any one of them reads all.
                folder = stack.enter_context(multiprocess_directory(settings.data_dir))
                on_exit = partial(worker_exited, path=folder)
            try:
                supervise(workers, serve_one, SHUTDOWN_TIMEOUT, on_exit)
            except WorkerFailed as exc:
                raise CommandError(str(exc), EXIT_WORKER) from None


def migrate(settings: Settings, sql_only: bool) -> None:
    with database(settings) as (url, _), reaching_database(url):
        upgrade(url, sql_only=sql_only)
        if not sql_only:
            # Look-alike accounts the canonical email rule found: listed until resolved.
            for line in email_collisions.report(url):
                print(line)
    if not sql_only:
        logger.info("the database is at the newest schema (%s)", head_revision())


def import_users(
    settings: Settings, path: Path, file_format: importer.Format, dry_run: bool
) -> int:
    """Exit status 1 when any row was rejected; the valid rows are imported all the same."""
    with database(settings) as (url, embedded):
        ready_schema(url, embedded)
        try:
            summary = importer.import_users(
                lambda: create_engine(settings, url),
                path,
                file_format=file_format,
                dry_run=dry_run,
            )
        except importer.ImportFileError as exc:
            raise CommandError(f"{path}: {exc}; nothing was imported", EXIT_REJECTED) from None
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            raise CommandError(
                f"the import stopped on a database error ({type(exc).__name__}); batches "
                "already committed stay, and running it again skips them",
                EXIT_DATABASE,
            ) from None
    return EXIT_REJECTED if summary.rejected else 0


async def _prune(settings: Settings, url: str) -> PruneCounts:
    engine = create_engine(settings, url)
    try:
        return await Pruner(engine, settings).run()
    finally:
        await engine.dispose()


def prune(settings: Settings) -> None:
    with database(settings) as (url, _), reaching_database(url):
        require_current_schema(url)
        counts = asyncio.run(_prune(settings, url))
    print(f"deleted {counts.summary()}")


def outbox(settings: Settings, retry: bool) -> None:
    with database(settings) as (url, _), reaching_database(url):
        require_current_schema(url)
        engine = create_engine(settings, url)
        outbox_command.command(engine, retry, settings.mail.retry_for, sys.stdout)


def generate_key(alg: str, output: Path | None) -> None:
    pem = generate_private_key_pem(alg)
    if output is None:
        sys.stdout.write(pem.decode("ascii"))
        return
    output.touch(mode=0o600, exist_ok=False)
    output.write_bytes(pem)
    logger.info("wrote a new %s private key to %s", alg, output)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # JSON lines, or readable lines when stderr is a terminal.
    configure_logging()
    try:
        if args.command == "keys":
            generate_key(args.alg, args.out)
            return 0
        settings = load_settings()
        if args.command == "serve":
            # The options win over AUTH_HOST / AUTH_PORT.
            settings = replace(
                settings,
                host=args.host if args.host is not None else settings.host,
                port=args.port if args.port is not None else settings.port,
            )
            serve(settings, args.workers)
        elif args.command == "migrate":
            migrate(settings, args.sql)
        elif args.command == "import-users":
            return import_users(settings, args.file, args.format, args.dry_run)
        elif args.command == "prune":
            prune(settings)
        elif args.command == "outbox":
            outbox(settings, args.retry_failed)
        elif args.command == "staff":
            with database(settings) as (url, embedded), reaching_database(url):
                ready_schema(url, embedded)
                return staff_command.run(args, settings, url)
        elif args.command == "email-collisions":
            with database(settings) as (url, _), reaching_database(url):
                try:
                    email_collisions.run(url, args.keep, print)
                except email_collisions.ResolveError as exc:
                    raise CommandError(str(exc), EXIT_REJECTED) from None
    except ConfigError as exc:
        print(f"rotor: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"rotor: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
