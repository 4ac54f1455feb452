"""`GET /metrics`: Prometheus text format, optional bearer token, off by a setting."""

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
import websockets
from clients import bearer, connect, expect_close, lint_metrics, recv_notification
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

INSTRUMENTS = {
    "notifier_open_sockets",
    "notifier_sockets_opened",
    "notifier_sockets_rejected",
    "notifier_notifications_stored",
    "notifier_deliveries",
    "notifier_delivery_latency_seconds",
    "notifier_queue_overflows",
    "notifier_broker_up",
}


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[str, float]:
    """Every sample as `name{label="value",...}` -> value."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_describe_every_instrument(api):
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert families >= INSTRUMENTS, INSTRUMENTS - families
    samples = await scrape(api.client)
    assert samples["notifier_open_sockets"] >= 0
    assert 'notifier_delivery_latency_seconds_bucket{le="+Inf"}' in samples


async def test_one_process_serves_its_process_and_python_metrics_without_pid(api):
    response = await api.client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "python_info"):
        assert families[name].samples, name
    assert families["python_gc_objects_collected"].samples
    labels = {k for f in families.values() for s in f.samples for k in s.labels}
    assert "pid" not in labels
    lint_metrics(response.text)


async def test_metrics_token_is_required_when_set(server_factory, api_for):
    proc = server_factory(NOTIFIER_METRICS_TOKEN="scrape-secret-1234")
    async with api_for(proc) as api:
        admin = await api.admin_token()
        for headers in ({}, bearer("wrong-secret"), bearer(admin), {"Authorization": "Basic eDp5"}):
            response = await api.client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert "notifier_" not in response.text
        samples = await scrape(api.client, **bearer("scrape-secret-1234"))
        assert "notifier_open_sockets" in samples


async def test_metrics_can_be_turned_off(server_factory, api_for):
    proc = server_factory(NOTIFIER_METRICS_ENABLED="false")
    async with api_for(proc) as api:
        response = await api.client.get("/metrics")
        assert response.status_code == 404
        assert "/metrics" not in (await api.client.get("/openapi.json")).json()["paths"]
        # The rest of the service is unaffected.
        assert (await api.client.get("/healthz")).status_code == 200


def test_blank_metrics_token_means_none(monkeypatch):
    from conftest import TEST_SECRET

    from notifier.settings import Settings

    monkeypatch.setenv("NOTIFIER_METRICS_TOKEN", "  ")
    assert Settings(secret_key=TEST_SECRET, _env_file=None).metrics_token is None  # type: ignore[call-arg]


async def wait_for_sample(client: httpx.AsyncClient, name: str, value: float) -> dict[str, float]:
    """Gauges follow sockets closing asynchronously: scrape until `name` reads `value`."""
    async with asyncio.timeout(10):
        while True:
            samples = await scrape(client)
            if samples.get(name) == value:
                return samples
            await asyncio.sleep(0.05)


async def test_counters_follow_traffic(server_factory, api_for):
    proc = server_factory()
    async with api_for(proc) as api:
        username, token = await api.user_with_token()
        before = await scrape(api.client)
        assert before["notifier_open_sockets"] == 0

        async with AsyncExitStack() as stack:
            live = await connect(api, token, stack, since=0)
            sent = [await api.send(username, f"m{i}") for i in range(3)]
            assert [await recv_notification(live) for _ in sent] == sent
            # A second device resumes from the start: three deliveries from the store.
            resumed = await connect(api, token, stack, since=0)
            assert [await recv_notification(resumed) for _ in sent] == sent
            during = await scrape(api.client)
        async with websockets.connect(f"{proc.ws_url}?token=not.a.token") as refused:
            assert await expect_close(refused) == (1008, "invalid token")
        async with websockets.connect(proc.ws_url) as refused:
            assert await expect_close(refused) == (1008, "no token")
        after = await wait_for_sample(api.client, "notifier_open_sockets", 0)

    def moved(name: str, samples: dict[str, float] = after) -> float:
        return samples.get(name, 0) - before.get(name, 0)

    assert during["notifier_open_sockets"] == 2
    assert moved("notifier_sockets_opened_total") == 2
    assert moved('notifier_sockets_rejected_total{reason="invalid token"}') == 1
    assert moved('notifier_sockets_rejected_total{reason="no token"}') == 1
    assert moved("notifier_notifications_stored_total") == 3
    assert moved('notifier_deliveries_total{path="live"}') == 3
    assert moved('notifier_deliveries_total{path="store"}') == 3
    # Latency is measured for live deliveries only.
    assert moved("notifier_delivery_latency_seconds_count") == 3
    assert moved("notifier_delivery_latency_seconds_sum") >= 0
    assert moved("notifier_queue_overflows_total") == 0
    assert after["notifier_broker_up"] == 1
