"""Multiprocess metrics plumbing for the supervisor of `rotor serve --workers N`.

Kept apart from service/metrics.py on purpose: prometheus_client picks its value storage when it
is first imported, so the supervisor must set PROMETHEUS_MULTIPROC_DIR before anything imports
it, and the workers it forks inherit that choice.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def configured_multiprocess_dir() -> Path | None:
    """The directory of multiprocess mode, when this process runs in it."""
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw else None


@contextmanager
def multiprocess_directory(data_dir: Path) -> Iterator[Path]:
    """For `rotor serve --workers N` with metrics on: an empty `<data_dir>/metrics`, exported as
    PROMETHEUS_MULTIPROC_DIR to the workers started inside the block, removed afterwards.

    Values from a previous run must not leak into this one, so the folder is emptied first.
    """
    path = data_dir.resolve() / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int, path: Path) -> None:
    """Call when a worker process ends: its live gauges (pool in use) stop counting."""
    from prometheus_client import multiprocess  # imported late: see the module docstring

    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
