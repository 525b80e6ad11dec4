"""The request log: one JSON line per request, request ids, security warnings, no secrets."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from helpers import PASSWORD, Client, bearer, refresh, signed_in

from service.domain.tokens import RefreshToken
from service.ops.logs import JsonFormatter

Lines = Callable[[], list[dict[str, Any]]]
ADMIN_KEY = "admin-key-that-is-long-enough"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted as the server does for a non-terminal."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def log_lines(log_output: io.StringIO) -> Lines:
    return lambda: [orjson.loads(line) for line in log_output.getvalue().splitlines()]


def access(lines: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "rotor.access" and line["route"] == route]


async def test_login_and_refresh_lines_carry_ids_but_no_secret(
    client: Client, log_output: io.StringIO, log_lines: Lines
) -> None:
    tokens = await signed_in(client)
    response = await refresh(client, tokens["refresh_token"])
    rotated = await response.json()
    await client.get("/v1/me", headers=bearer(rotated))

    [login_line] = access(log_lines(), "/v1/login")
    assert login_line["level"] == "info"
    assert login_line["method"] == "POST"
    assert login_line["status"] == 200
    assert login_line["user_id"] == tokens["user"]["id"]
    assert login_line["session_id"] == tokens["session_id"]
    assert isinstance(login_line["duration_ms"], float)
    assert login_line["time"].endswith("Z")
    assert len(login_line["request_id"]) == 32
    [refresh_line] = access(log_lines(), "/v1/refresh")
    assert refresh_line["user_id"] == tokens["user"]["id"]
    assert refresh_line["session_id"] == tokens["session_id"]
    [register_line] = access(log_lines(), "/v1/register")
    assert register_line["user_id"] is None
    assert register_line["status"] == 201

    text = log_output.getvalue()
    secrets = [PASSWORD, tokens["access_token"], rotated["access_token"]]
    for raw in (tokens["refresh_token"], rotated["refresh_token"]):
        token = RefreshToken.parse(raw)
        assert token is not None
        secrets += [raw, token.secret.hex(), raw.rsplit(".", 1)[-1]]
    for secret in secrets:
        assert secret not in text


async def test_failed_login_is_a_security_warning_without_the_email_or_password(
    client: Client, log_lines: Lines
) -> None:
    await client.post(
        "/v1/login",
        json={"email": "nobody@example.com", "password": "secret-guess-1"},
        headers={"X-Request-ID": "req-42"},
    )
    lines = log_lines()
    [warning] = [line for line in lines if line["logger"] == "rotor.security"]
    assert warning["level"] == "warning"
    assert warning["event"] == "login_failure"
    assert warning["request_id"] == "req-42"  # joins the request's access line
    assert access(lines, "/v1/login")[0]["request_id"] == "req-42"
    text = orjson.dumps(lines).decode()
    assert "secret-guess-1" not in text
    assert "nobody@example.com" not in text


async def test_reuse_and_admin_actions_are_security_warnings(
    make_client: Any, log_lines: Lines, clock: Any
) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    tokens = await signed_in(client)
    await refresh(client, tokens["refresh_token"])
    clock.advance(60)
    await refresh(client, tokens["refresh_token"])
    user_id = tokens["user"]["id"]
    await client.post(
        f"/v1/admin/users/{user_id}/disable", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    warnings = [line for line in log_lines() if line["level"] == "warning"]
    assert [line["event"] for line in warnings] == ["refresh_reuse_detected", "admin_disable"]
    assert warnings[0]["target_session_id"] == tokens["session_id"]
    assert {line["target_user_id"] for line in warnings} == {user_id}
    assert ADMIN_KEY not in orjson.dumps(log_lines()).decode()


async def test_request_id_is_kept_when_valid_and_echoed(client: Client, log_lines: Lines) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123_DEF.xyz"})
    assert response.headers["X-Request-ID"] == "abc-123_DEF.xyz"
    assert access(log_lines(), "/healthz")[0]["request_id"] == "abc-123_DEF.xyz"


@pytest.mark.parametrize(
    "header", ["has space", "x" * 129, "tab\there", "caf\u00e9", "a\u2028b", ""]
)
async def test_invalid_request_id_is_replaced(
    client: Client, log_lines: Lines, header: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": header})
    echoed = response.headers["X-Request-ID"]
    assert echoed != header
    assert len(echoed) == 32
    assert access(log_lines(), "/healthz")[0]["request_id"] == echoed


async def test_errors_and_unknown_routes_are_logged_with_their_status(
    client: Client, log_lines: Lines
) -> None:
    response = await client.get("/v1/nowhere/123")
    assert response.status == 404
    assert response.headers["X-Request-ID"]
    response = await client.post(
        "/v1/login", data=b"not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    lines = [line for line in log_lines() if line["logger"] == "rotor.access"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("unmatched", 404),
        ("/v1/login", 400),
    ]
    assert "/v1/nowhere/123" not in orjson.dumps(lines).decode()


async def test_route_template_not_path_for_parameterised_routes(
    client: Client, log_lines: Lines
) -> None:
    tokens = await signed_in(client)
    await client.delete(f"/v1/sessions/{tokens['session_id']}", headers=bearer(tokens))
    [line] = access(log_lines(), "/v1/sessions/{id}")
    assert line["status"] == 204
    assert line["session_id"] == tokens["session_id"]  # the caller's own, known from the token
