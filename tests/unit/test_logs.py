"""Log formats: readable on a terminal, JSON lines otherwise."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from service.ops.logs import FIELDS, configure_logging, request_context


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(stream)
    with request_context("rid-1"):
        logging.getLogger("rotor.test").info("hello %s", "world", extra={FIELDS: {"n": 1}})
    line = orjson.loads(stream.getvalue())
    assert line["message"] == "hello world"
    assert line["level"] == "info"
    assert line["logger"] == "rotor.test"
    assert line["request_id"] == "rid-1"
    assert line["n"] == 1


@pytest.mark.usefixtures("restore_root_logger")
def test_readable_lines_on_a_terminal() -> None:
    stream = Terminal()
    configure_logging(stream)
    logging.getLogger("rotor.test").warning("careful", extra={FIELDS: {"event": "x"}})
    text = stream.getvalue()
    assert not text.startswith("{")
    assert "WARNING" in text
    assert "rotor.test: careful event=x" in text
