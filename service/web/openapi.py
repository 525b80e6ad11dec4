"""The OpenAPI document: one checked-in YAML file, parsed once and served as JSON bytes."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson
import yaml

DOCUMENT = "openapi.yaml"


def load_document() -> dict[str, Any]:
    """The parsed document (safe_load: plain data only, no YAML tags)."""
    text = resources.files(__package__).joinpath(DOCUMENT).read_text(encoding="utf-8")
    # The C loader when libyaml is there (PyYAML's wheels ship it), else the pure-Python one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader: plain data only
    if not isinstance(document, dict):
        raise ValueError(f"{DOCUMENT} is not a mapping")
    return document


@cache
def document_json() -> bytes:
    """The document as the JSON served at GET /openapi.json (immutable: parsed once a process)."""
    return orjson.dumps(load_document())
