"""`rotor --help` and each command's help: the options described, the variables named;
`--version`; `serve --host/--port` winning over AUTH_HOST/AUTH_PORT."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from servers import ServerProcess, _environment, free_port

from service import cli, cli_parser
from service.config import Settings, variables

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("serve", "migrate", "prune", "import-users", "keys", "keys generate")


def help_text(command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service", *command.split(), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return " ".join(result.stdout.split())  # argparse wraps lines; compare words


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"rotor {version('rotor')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_is_described(command: str) -> None:
    parser = cli_parser.parser()
    for word in command.split():
        parser = subparsers(parser)[word]
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    for action in options:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    assert parser.epilog and "environment variables read:" in parser.epilog


def test_serve_help_names_every_configuration_variable() -> None:
    text = help_text("serve")
    assert variables(), "config.variables() found nothing"
    for name in variables():
        assert name in text, name
    assert "--host HOST" in text and "overrides AUTH_HOST" in text
    assert "--port PORT" in text and "overrides AUTH_PORT" in text


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("migrate", cli_parser.MIGRATE_VARIABLES),
        ("prune", cli_parser.PRUNE_VARIABLES),
        ("import-users", cli_parser.DATABASE_VARIABLES),
    ],
)
def test_database_commands_name_the_variables_they_read(
    command: str, names: tuple[str, ...]
) -> None:
    text = help_text(command)
    known = set(variables())
    for name in names:
        assert name in known, f"{name} is not a configuration variable"
        assert name in text, name
    assert "DATABASE_URL" in text and "embedded PostgreSQL" in text


def test_prune_help_says_what_it_deletes() -> None:
    text = help_text("prune")
    assert "audit events" in text and "AUTH_EVENT_RETENTION" in text
    assert "sessions" in text and "login-failure counters" in text


def test_import_help_describes_format_and_dry_run() -> None:
    text = help_text("import-users")
    assert "--format {auto,jsonl,csv}" in text and "file format" in text
    assert "--dry-run" in text and "write nothing" in text


def test_keys_generate_reads_no_variable() -> None:
    assert "environment variables read: none." in help_text("keys generate")


@pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "65536"], ["--port", "x"]])
def test_serve_rejects_a_port_out_of_range(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli_parser.parser().parse_args(["serve", *argv])
    assert raised.value.code == 2


def test_host_and_port_options_override_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr(cli, "serve", lambda settings, workers: seen.append(settings))
    monkeypatch.setenv("AUTH_HOST", "127.0.0.2")
    monkeypatch.setenv("AUTH_PORT", "9001")
    monkeypatch.delenv("DATABASE_URL", raising=False)

    assert cli.main(["serve"]) == 0
    assert cli.main(["serve", "--host", "::1", "--port", "9002"]) == 0
    assert [(s.host, s.port) for s in seen] == [("127.0.0.2", 9001), ("::1", 9002)]


async def test_serve_listens_on_the_port_option_not_auth_port(
    database_url: str, tmp_path: Path
) -> None:
    port, other = free_port(), free_port()
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: ASYNC220 - the fixture-free teardown needs Popen
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=_environment(database_url, other, tmp_path, {}),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    server = ServerProcess(process, port, stderr_path)
    try:
        status = await _first_health_status(server)
        assert status == 200, server.stderr()
        assert f"127.0.0.1:{port}" in server.stderr()
        assert f":{other}" not in server.stderr()
    finally:
        server.stop()


async def _first_health_status(server: ServerProcess) -> Any:
    """/healthz's status once the server listens (None if it exits first)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        for _ in range(600):
            if server.process.poll() is not None:
                return None
            try:
                async with http.get(f"{server.url}/healthz") as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    return None
