"""The OAuth guides: their code is the code the tests run, and every OAuth route, error code
and variable has its reference entry."""

from __future__ import annotations

import re
from pathlib import Path

from service.web.openapi import load_document

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _code_blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.DOTALL)


def test_resource_server_guide_shows_the_example_files_verbatim() -> None:
    guide = (DOCS / "resource-servers.md").read_text()
    assert (DOCS / "examples" / "resource_server.py").read_text() in _code_blocks(guide, "python")
    node = (DOCS / "examples" / "resource-server.mjs").read_text()
    assert node in _code_blocks(guide, "javascript")


def test_every_oauth_route_error_and_variable_is_in_the_reference() -> None:
    routes = (DOCS / "reference" / "routes.md").read_text()
    for path, item in load_document()["paths"].items():
        if path.startswith(("/oauth/", "/.well-known/o")):
            for method in item:
                assert f"### {method.upper()} {path}\n" in routes, (method, path)
    errors = (DOCS / "reference" / "errors.md").read_text()
    for code in ["invalid_client", "unsupported_grant_type"]:
        assert re.search(rf"^\| `{code}` \|", errors, flags=re.MULTILINE), code
    configuration = (DOCS / "reference" / "configuration.md").read_text()
    for variable in ["AUTH_INTROSPECTION_CLIENTS", "AUTH_ISSUER"]:
        assert re.search(rf"^\| `{variable}` \|", configuration, flags=re.MULTILINE), variable
