"""The reference pages in docs/ against the code: every route of the served OpenAPI document has
its `### METHOD /path` heading in routes.md and every heading a route; every error code of the
domain errors and of the HTTP layer is a row of errors.md; every variable service/config.py reads
is a row of configuration.md. Nothing is listed here: the lists come from the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from service.config import variables
from service.domain import errors
from service.web import middlewares
from service.web.openapi import load_document

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
HEADING = re.compile(r"^### ([A-Z]+) (/\S*)\s*$", re.MULTILINE)
# A table row whose first cell is a code span: | `name` | ...
FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`\s*\|", re.MULTILINE)


def documented_routes() -> set[tuple[str, str]]:
    return set(HEADING.findall((REFERENCE / "routes.md").read_text(encoding="utf-8")))


def served_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in load_document()["paths"].items()
        for method in item
        if method in METHODS
    }


def first_cells(page: str) -> set[str]:
    return set(FIRST_CELL.findall((REFERENCE / page).read_text(encoding="utf-8")))


def error_codes() -> set[str]:
    """The codes of every AuthError subclass, and those the HTTP layer maps statuses to."""
    codes = {
        kind.code
        for _, kind in inspect.getmembers(errors, inspect.isclass)
        if issubclass(kind, errors.AuthError) and kind is not errors.AuthError
    }
    codes |= {code for code, _ in middlewares._HTTP_CODES.values()}
    return codes


def test_the_sources_are_not_empty() -> None:
    # A parser that finds nothing would make every test below pass vacuously.
    assert len(served_routes()) >= 10
    assert len(documented_routes()) >= 10
    assert {"invalid_grant", "not_found", "method_not_allowed"} <= error_codes()
    assert {"DATABASE_URL", "AUTH_PORT"} <= set(variables())


def test_every_served_route_has_a_heading() -> None:
    missing = served_routes() - documented_routes()
    assert not missing, f"add `### METHOD /path` headings to routes.md for {sorted(missing)}"


def test_every_heading_is_a_served_route() -> None:
    extra = documented_routes() - served_routes()
    assert not extra, f"routes.md documents routes the OpenAPI document lacks: {sorted(extra)}"


def test_every_route_heading_appears_once() -> None:
    headings = HEADING.findall((REFERENCE / "routes.md").read_text(encoding="utf-8"))
    assert len(headings) == len(set(headings))


def test_every_error_code_has_a_row() -> None:
    missing = error_codes() - first_cells("errors.md")
    assert not missing, f"add rows to errors.md for {sorted(missing)}"


@pytest.mark.parametrize("name", variables())
def test_every_variable_has_a_row(name: str) -> None:
    assert name in first_cells("configuration.md"), f"add a row to configuration.md for {name}"


def test_every_variable_row_is_read_by_the_settings() -> None:
    stale = first_cells("configuration.md") - set(variables())
    assert not stale, f"configuration.md lists variables config.py does not read: {sorted(stale)}"


def test_every_link_of_the_readme_resolves_inside_the_repository() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target} points outside the repository"
        assert path.exists(), f"{target} does not exist"
