"""Prometheus metrics (prometheus-client), on when AUTH_METRICS=true.

Each app owns its `Metrics` (own CollectorRegistry: no module-level singletons, so tests can build
many apps in one process). With several worker processes, prometheus-client's multiprocess mode
keeps every worker's values in memory-mapped files under PROMETHEUS_MULTIPROC_DIR and a scrape of
any worker merges them all. That variable must be set before prometheus_client is first imported
in a worker, which is why the web layer imports this module only when metrics are on, and why
`service.ops.metrics_workers.multiprocess_directory` (called by `rotor serve` before it starts
workers, without importing prometheus_client) sets it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from service.domain.messages import MessageKind
from service.domain.observer import (
    LOGIN_OUTCOMES,
    MESSAGE_OUTCOMES,
    REFRESH_OUTCOMES,
    AuthObserver,
    LoginOutcome,
    MessageOutcome,
    RefreshOutcome,
)
from service.ops.metrics_workers import (
    MULTIPROC_ENV,
    configured_multiprocess_dir,
    multiprocess_directory,
    worker_exited,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# bcrypt at cost 10..14 takes tens of milliseconds to about a second.
BCRYPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics(AuthObserver):
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and values.ValueClass is values.MutexValue:
            raise RuntimeError(
                f"{MULTIPROC_ENV} was set after prometheus_client was imported in this process: "
                "set it before the worker starts"
            )
        self._multiprocess_dir = multiprocess_dir
        self._registry = CollectorRegistry()
        registry = self._registry
        labels = ("method", "route", "status")
        self.requests = Counter(
            "rotor_http_requests",
            "HTTP requests, by route template and status.",
            labels,
            registry=registry,
        )
        self.request_duration = Histogram(
            "rotor_http_request_duration_seconds",
            "HTTP request latency, by route template and status.",
            labels,
            registry=registry,
        )
        self.logins = Counter(
            "rotor_logins", "Login attempts, by outcome.", ["outcome"], registry=registry
        )
        self.refreshes = Counter(
            "rotor_refreshes", "Refresh attempts, by outcome.", ["outcome"], registry=registry
        )
        self.messages = Counter(
            "rotor_messages",
            "Outbox delivery attempts, by message kind and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.bcrypt_duration = Histogram(
            "rotor_bcrypt_duration_seconds",
            "Time spent in bcrypt per hash or verify.",
            ["operation"],
            buckets=BCRYPT_BUCKETS,
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "rotor_db_pool_connections_in_use",
            "Database connections checked out of the pool (summed over live workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Every outcome is exported from the start, at zero, so rate() works from the first scrape.
        for login_outcome in LOGIN_OUTCOMES:
            self.logins.labels(login_outcome)
        for refresh_outcome in REFRESH_OUTCOMES:
            self.refreshes.labels(refresh_outcome)
        for kind in MessageKind:
            for message_outcome in MESSAGE_OUTCOMES:
                self.messages.labels(kind.value, message_outcome)

    # --- AuthObserver ------------------------------------------------------------------------

    def on_login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        self.logins.labels(outcome).inc()

    def on_refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        self.refreshes.labels(outcome).inc()

    def on_message(self, kind: str, outcome: MessageOutcome) -> None:
        self.messages.labels(kind, outcome).inc()

    # --- other sources -----------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.request_duration.labels(*labels).observe(seconds)

    def observe_bcrypt(self, operation: str, seconds: float) -> None:
        self.bcrypt_duration.labels(operation).observe(seconds)

    def instrument_pool(self, engine: AsyncEngine) -> None:
        """Follow the engine's pool: +1 on every checkout, -1 on every checkin."""

        def checked_out(*_: object) -> None:
            self.pool_in_use.inc()

        def checked_in(*_: object) -> None:
            self.pool_in_use.dec()

        event.listen(engine.sync_engine, "checkout", checked_out)
        event.listen(engine.sync_engine, "checkin", checked_in)

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's values merged."""
        if self._multiprocess_dir is not None:
            return render_multiprocess(self._multiprocess_dir)
        return generate_latest(self._registry)


def render_multiprocess(path: Path) -> bytes:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


__all__ = [
    "MULTIPROC_ENV",
    "Metrics",
    "configured_multiprocess_dir",
    "multiprocess_directory",
    "render_multiprocess",
    "worker_exited",
]
