"""Property-based fuzzing of every operation against the OpenAPI document (schemathesis).

The real app serves on a local port (conftest's make_client, real PostgreSQL); schemathesis
generates requests from service/web/openapi.yaml, valid ones and invalid ones, and every response
must be no 5xx and conform to the document: a declared status code, its content type, its body
schema and its headers. Each generated request is sent without credentials, with a live user's
access token, with the admin key and, where the refresh cookie is a way in, with that cookie; in
valid-data mode the path ids are also replaced by real ones, so 2xx answers are checked too.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from helpers import PASSWORD, Client
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from service.settings.oauth import load_oauth_settings
from service.web.openapi import load_document

ADMIN_KEY = "fuzz-admin-key-that-is-long-enough"
# Bounded so the whole test stays well under two minutes on a 2-core machine.
MAX_EXAMPLES = 40
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@dataclass(frozen=True)
class Identity:
    user_id: str
    session_id: str
    access_token: str
    cookie_token: str  # the refresh token of a second session, logged in with transport=cookie


_emails = itertools.count()


def _sign_up(session: requests.Session, base_url: str) -> Identity:
    """A fresh user per example: whatever the previous example did to its user (logout, disable,
    password change) cannot leak into this one."""
    email = f"fuzz-{next(_emails)}-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    registered = session.post(f"{base_url}/v1/register", json=credentials, timeout=30)
    assert registered.status_code == 201, registered.text
    tokens = session.post(f"{base_url}/v1/login", json=credentials, timeout=30)
    assert tokens.status_code == 200, tokens.text
    cookie_login = session.post(
        f"{base_url}/v1/login", json={**credentials, "transport": "cookie"}, timeout=30
    )
    assert cookie_login.status_code == 200, cookie_login.text
    cookie_token = cookie_login.cookies["refresh_token"]
    session.cookies.clear()
    body = tokens.json()
    return Identity(body["user"]["id"], body["session_id"], body["access_token"], cookie_token)


def _uses_cookie(operation: Any) -> bool:
    security = operation.definition.raw.get("security", [])
    return any("refreshCookie" in requirement for requirement in security)


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, seen: Counter[int]) -> None:
    session = requests.Session()
    cookie_route = _uses_cookie(operation)

    def send(case: Any, headers: dict[str, str], cookies: dict[str, str] | None = None) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=session, headers=headers, cookies=cookies, checks=CHECKS
        )
        seen[response.status_code] += 1
        session.cookies.clear()  # a Set-Cookie must not ride along into the next request

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        me = _sign_up(session, base_url)
        send(case, {})
        send(case, {"Authorization": f"Bearer {me.access_token}"})
        send(case, {"Authorization": f"Bearer {ADMIN_KEY}"})
        if cookie_route:
            send(case, {"X-CSRF-Token": "1"}, {"refresh_token": me.cookie_token})
        if mode is GenerationMode.POSITIVE and "id" in case.path_parameters:
            # Real ids, so the success answers (200 session lists, 204s) are checked as well.
            if case.path.startswith("/v1/admin/"):
                case.path_parameters = {"id": me.user_id}
                send(case, {"Authorization": f"Bearer {ADMIN_KEY}"})
            else:
                case.path_parameters = {"id": me.session_id}
                send(case, {"Authorization": f"Bearer {me.access_token}"})

    run()


def _fuzz_all(base_url: str, seen: Counter[int]) -> list[str]:
    schema = schemathesis.openapi.from_dict(load_document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 34, [operation.label for operation in operations]
    failures = []
    for operation in operations:
        # Invalid data needs something to make invalid: a body or a parameter.
        negatable = len(operation.body) > 0 or any(operation.iter_parameters())
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negatable else [])
        for mode in modes:
            try:
                _fuzz(operation, mode, base_url, seen)
            # Collect every operation's failure, not just the first (schemathesis raises groups).
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return failures


@pytest.mark.slow
async def test_every_operation_answers_as_documented(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client(
        admin_key=ADMIN_KEY,
        login_max_failures=1_000_000,
        # The OAuth metadata and introspection exist only when configured: serve them too.
        issuer="http://127.0.0.1",
        oauth=load_oauth_settings({"AUTH_INTROSPECTION_CLIENTS": "fuzz-api:fuzz-api-secret-0123"}),
    )
    base_url = str(client.make_url("")).rstrip("/")
    # The server runs on this loop; schemathesis sends blocking requests from a worker thread.
    seen: Counter[int] = Counter()
    failures = await asyncio.to_thread(_fuzz_all, base_url, seen)
    assert not failures, "\n\n".join(failures)
    # The fuzzer got past validation and authentication, not just to the error answers.
    assert {200, 201, 204, 400, 401, 403, 404, 422} <= set(seen), seen
