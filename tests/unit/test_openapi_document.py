"""The OpenAPI document: valid OpenAPI 3.1, one entry per registered route, and request-body
schemas that accept exactly what service/web/schemas.py accepts."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from service.config import Settings
from service.domain.keys import KeySet
from service.web import schemas
from service.web.app import create_app
from service.web.openapi import load_document

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENT = load_document()


def test_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(load_document()).validate()  # raises on an invalid document


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_has_an_entry_and_every_entry_a_route(settings: Settings, keys: KeySet) -> None:
    # Not started, so no database; metrics on, so the optional /metrics route is registered too.
    app = create_app(replace(settings, metrics=True), "postgresql://unused/unused", keys)
    # A sub-application's resource (admin) iterates over the sub-app's routes, each with its
    # full path.
    registered = {
        (route.resource.canonical, route.method)
        for resource in app.router.resources()
        for route in resource
        if route.resource is not None
        if route.method != "HEAD"  # aiohttp adds HEAD to every GET route
        # The support console's HTML pages are not part of the JSON contract.
        if not route.resource.canonical.startswith("/console")
    }
    assert registered, "no routes registered"
    assert registered - _documented() == set(), "routes without an OpenAPI entry"
    assert _documented() - registered == set(), "OpenAPI entries without a route"


def test_every_operation_declares_its_errors_as_json() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = DOCUMENT["components"]["responses"][name]
                if int(status) >= 400:
                    assert "application/json" in response["content"], (path, method, status)
                if status == "204":
                    assert "content" not in response, (path, method)
            if operation.get("requestBody"):
                statuses = set(operation["responses"])
                assert {"400", "413"} <= statuses, (path, method)
                # JSON bodies are validated field by field (422); the OAuth forms of RFC 6749
                # answer 400 invalid_request instead.
                if "application/json" in operation["requestBody"]["content"]:
                    assert "422" in statuses, (path, method)


# --- request bodies: the document's rules are the validation rules ---------------------------


def _validator(name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema_rs.validator_for(root)


def _accepted(model: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


# Characters where validators tend to disagree: whitespace of several kinds, controls, '@', '.',
# NUL, a BOM, non-ASCII letters and confusables.
_TRICKY = "a@.\x00\t\n\x1f\x7f\x85\xa0\u2003\u3000\ufeff é\u0430\uff20"
_LENGTHS = [0, 1, 7, 8, 9, 199, 200, 201, 240, 250, 255, 256, 257, 511, 512, 513, 4096, 4097]
_strings = st.one_of(
    st.text(alphabet=_TRICKY, max_size=12),
    st.text(max_size=12),
    st.sampled_from(_LENGTHS).map(lambda n: "x" * n),
)
_part = st.sampled_from(["a", "ada", "é", "\u0430", "a.b"]) | st.text(_TRICKY, min_size=1)
_emails = st.builds(
    lambda pad, local, domain, tld, n: f"{pad}{local}{'x' * n}@{domain}.{tld}{pad}",
    st.sampled_from(["", " ", "\t", "\u3000"]),
    _part,
    _part,
    st.sampled_from(["io", "c", "é", "a.b", ""]),
    st.sampled_from([0, 0, 0, 240, 244, 245, 246, 250]),
)
_values = st.one_of(
    _strings,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["body", "cookie", "local", "others", "global", "Local"]),
)


_VALID: dict[str, list[Any]] = {
    "email": ["ada@example.com", " A@X.io\t", "é@\u0430.io"],
    "password": ["x" * 8, "x" * 256, "\u0430" * 9],
    "device_name": ["Pixel 8", None],
    "platform": ["ios", None],
    "transport": ["body", "cookie"],
    "scope": ["local", "others", "global"],
    "refresh_token": ["a.b", None],
    "unknown": [1, None, "x"],  # unknown fields are ignored
}


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _boundaries(name: str, body: str) -> st.SearchStrategy[str]:
    """Strings one short of, at, and one past the document's length limits for this field: if a
    limit in the document is off by any amount, one of them lands between the two limits."""
    schema = _resolved(DOCUMENT["components"]["schemas"][body]["properties"].get(name, {}))
    limits = [schema[key] for key in ("minLength", "maxLength") if key in schema]
    lengths = sorted({n + d for n in limits for d in (-1, 0, 1) if n + d >= 0}) or [0]
    if name == "email":  # keep the shape valid so only the length decides
        return st.sampled_from(lengths).map(lambda n: "x" * max(n - 5, 1) + "@a.io")
    return st.sampled_from(lengths).map(lambda n: "p" * n)


def _valid(name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(_VALID["password" if "password" in name else name])


def _anything(name: str, body: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        _boundaries(name, body), _emails if name == "email" else _strings, _values, _valid(name)
    )


def _bodies(body: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies valid but for one field under test (so each rule decides alone), plus bodies
    with fields missing and anything in them."""
    properties = list(DOCUMENT["components"]["schemas"][body]["properties"])
    required = DOCUMENT["components"]["schemas"][body].get("required", [])
    valid = st.fixed_dictionaries(
        {field: _valid(field) for field in required},
        optional={field: _valid(field) for field in properties if field not in required},
    )
    focused = st.tuples(st.sampled_from(properties), valid).flatmap(
        lambda pair: _anything(pair[0], body).map(lambda value: {**pair[1], pair[0]: value})
    )
    loose = st.fixed_dictionaries(
        {}, optional={field: _anything(field, body) for field in [*properties, "unknown"]}
    )
    return st.one_of(focused, focused, loose)


BODIES: list[tuple[str, type[BaseModel]]] = [
    ("RegisterBody", schemas.RegisterBody),
    ("LoginBody", schemas.LoginBody),
    ("RefreshBody", schemas.RefreshBody),
    ("LogoutBody", schemas.LogoutBody),
    ("PasswordChangeBody", schemas.PasswordChangeBody),
    ("DeleteAccountBody", schemas.DeleteAccountBody),
]


def _trimmed(data: dict[str, Any]) -> dict[str, Any]:
    """The document says emails are trimmed before its checks apply."""
    email = data.get("email")
    return {**data, "email": email.strip()} if isinstance(email, str) else data


@pytest.mark.parametrize(("name", "model"), BODIES, ids=[name for name, _ in BODIES])
def test_body_schema_accepts_exactly_what_the_server_accepts(
    name: str, model: type[BaseModel]
) -> None:
    validator = _validator(name)
    seen = {True: 0, False: 0}

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(_bodies(name))
    def agree(data: dict[str, Any]) -> None:
        server = _accepted(model, data)
        document = validator.is_valid(_trimmed(data))
        assert server == document, f"server accepts: {server}, document accepts: {document}"
        seen[server] += 1

    agree()
    # The generator reached both sides of the rules, so the agreement means something.
    assert seen[True] >= 10, seen
    assert seen[False] >= 10, seen


def test_email_pattern_matches_python_rules() -> None:
    """Spot checks of the spelled-out whitespace set against Python's \\s."""
    pattern = re.compile(DOCUMENT["components"]["schemas"]["Email"]["pattern"])
    for (
        ch
    ) in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000":
        assert ch.isspace()
        assert not pattern.match(f"a{ch}b@example.com")
    assert not pattern.match("\ufeffa@example.com")  # not whitespace, but invisible: refused
    assert pattern.match("ada@example.com")
