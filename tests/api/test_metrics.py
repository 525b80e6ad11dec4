"""GET /metrics: off by default; counters for requests, logins, refreshes, bcrypt and the pool;
correct across worker processes through prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import PASSWORD, Client, bearer, error_of, refresh, signed_in
from prometheus_client.parser import text_string_to_metric_families

from service.ops.metrics import (
    MULTIPROC_ENV,
    Metrics,
    multiprocess_directory,
    render_multiprocess,
    worker_exited,
)

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(await response.text())


async def test_metrics_are_off_by_default(client: Client) -> None:
    response = await client.get("/metrics")
    assert response.status == 404
    assert await error_of(response) == "not_found"


async def test_login_refresh_and_reuse_are_counted(make_client: Any, clock: Any) -> None:
    client = await make_client(metrics=True)
    tokens = await signed_in(client)
    failed = await client.post("/v1/login", json={"email": "ada@example.com", "password": "nope"})
    assert failed.status == 401
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    assert (await refresh(client, tokens["refresh_token"])).status == 200  # grace retry
    clock.advance(60)
    assert (await refresh(client, tokens["refresh_token"])).status == 401  # reuse
    assert (await refresh(client, rotated["refresh_token"])).status == 401  # session revoked
    assert (await refresh(client, "garbage")).status == 401
    samples = await scrape(client)

    assert value(samples, "rotor_logins_total", outcome="success") == 1
    assert value(samples, "rotor_logins_total", outcome="failure") == 1
    assert ("rotor_logins_total", frozenset({("outcome", "throttled")})) in samples  # at zero
    assert value(samples, "rotor_refreshes_total", outcome="rotated") == 1
    assert value(samples, "rotor_refreshes_total", outcome="grace_retry") == 1
    assert value(samples, "rotor_refreshes_total", outcome="reuse_detected") == 1
    assert value(samples, "rotor_refreshes_total", outcome="invalid") == 2
    refresh_route = {"method": "POST", "route": "/v1/refresh"}
    assert value(samples, "rotor_http_requests_total", **refresh_route, status="200") == 2
    assert value(samples, "rotor_http_requests_total", **refresh_route, status="401") == 3
    assert (
        value(samples, "rotor_http_request_duration_seconds_count", **refresh_route, status="401")
        == 3
    )
    # register hashes once; the two logins verify twice.
    assert value(samples, "rotor_bcrypt_duration_seconds_count", operation="hash") == 1
    assert value(samples, "rotor_bcrypt_duration_seconds_count", operation="verify") == 2
    # Every connection went back to the pool.
    assert value(samples, "rotor_db_pool_connections_in_use") == 0


async def test_labels_use_route_templates_not_paths(make_client: Any) -> None:
    client = await make_client(metrics=True)
    tokens = await signed_in(client)
    other = await signed_in(client, "bob@example.com")
    session_id = other["session_id"]
    assert (await client.delete(f"/v1/sessions/{session_id}", headers=bearer(tokens))).status == 404
    assert (await client.get("/no/such/path-12345")).status == 404
    text = await (await client.get("/metrics")).text()
    assert session_id not in text
    assert "path-12345" not in text
    samples = parse(text)
    assert (
        value(
            samples,
            "rotor_http_requests_total",
            method="DELETE",
            route="/v1/sessions/{id}",
            status="404",
        )
        == 1
    )
    assert (
        value(samples, "rotor_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )


async def test_throttled_and_disabled_logins_are_counted(make_client: Any) -> None:
    admin_key = "admin-key-that-is-long-enough"
    client = await make_client(metrics=True, login_max_failures=1, admin_key=admin_key)
    await signed_in(client)
    body = {"email": "ada@example.com", "password": "wrong password"}
    assert (await client.post("/v1/login", json=body)).status == 401
    assert (await client.post("/v1/login", json=body)).status == 429
    bob = await signed_in(client, "bob@example.com")
    disabled = await client.post(
        f"/v1/admin/users/{bob['user']['id']}/disable",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert disabled.status == 204
    response = await client.post(
        "/v1/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert response.status == 403
    samples = await scrape(client)
    assert value(samples, "rotor_logins_total", outcome="throttled") == 1
    assert value(samples, "rotor_logins_total", outcome="disabled") == 1
    assert value(samples, "rotor_logins_total", outcome="failure") == 1


# A worker: multiprocess mode from the environment, as `rotor serve --workers N` starts it.
WORKER = """
import sys
from service.ops.metrics import Metrics, configured_multiprocess_dir
metrics = Metrics(configured_multiprocess_dir())
metrics.on_login("success", None)
metrics.on_refresh("rotated", None, None)
metrics.observe_request("POST", "/v1/login", 200, 0.01)
metrics.pool_in_use.inc(int(sys.argv[1]))
"""


def test_workers_counters_are_merged_in_multiprocess_mode(tmp_path: Path) -> None:
    with multiprocess_directory(tmp_path) as folder:
        assert folder == tmp_path.resolve() / "metrics"
        assert os.environ[MULTIPROC_ENV] == str(folder)
        workers = [
            subprocess.run(
                [sys.executable, "-c", WORKER, str(in_use)],
                cwd=ROOT,
                env=os.environ.copy(),
                check=True,
            )
            for in_use in (2, 3)
        ]
        assert all(worker.returncode == 0 for worker in workers)
        samples = parse(render_multiprocess(folder).decode())
        assert value(samples, "rotor_logins_total", outcome="success") == 2
        assert value(samples, "rotor_refreshes_total", outcome="rotated") == 2
        labels = {"method": "POST", "route": "/v1/login", "status": "200"}
        assert value(samples, "rotor_http_requests_total", **labels) == 2
        assert value(samples, "rotor_db_pool_connections_in_use") == 5
        # A worker that exited stops counting in the live gauge; counters keep its increments.
        pid = next(
            int(name.split("_")[-1].removesuffix(".db"))
            for name in sorted(os.listdir(folder))
            if name.startswith("gauge_livesum_")
        )
        worker_exited(pid, folder)
        samples = parse(render_multiprocess(folder).decode())
        assert value(samples, "rotor_db_pool_connections_in_use") in (2, 3)
        assert value(samples, "rotor_logins_total", outcome="success") == 2
    assert not folder.exists()
    assert MULTIPROC_ENV not in os.environ


def test_multiprocess_dir_set_too_late_is_refused(tmp_path: Path) -> None:
    # This test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR.
    with pytest.raises(RuntimeError, match=MULTIPROC_ENV):
        Metrics(tmp_path)
