"""Health checks against real test ComfyUI processes: OFFLINE/ONLINE, URL edits, hanging nodes."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.utils import timezone

from nodes import health
from nodes.models import ComfyNode
from testcomfy.process import spawn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def procs():
    started = []

    def start(**flags):
        proc = spawn(port=0, **flags)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def test_killed_node_goes_offline_after_two_checks_and_online_after_restart(procs, settings):
    settings.NODE_OFFLINE_AFTER = 2
    proc = procs()
    node = ComfyNode.objects.create(name="gpu1", base_url=proc.url)
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.class_types and "KSampler" in node.class_types
    assert node.system_stats["system"]["comfyui_version"]
    proc.kill()
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.consecutive_failures == 1  # one miss is not enough
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "OFFLINE" and "unreachable" in node.last_error
    proc.start()
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.last_error == "" and node.consecutive_failures == 0


def test_changing_base_url_moves_the_next_check(procs, admin_api):
    old, new = procs(), procs()
    node = ComfyNode.objects.create(name="gpu1", base_url=old.url)
    health.check_all_nodes()
    old.kill()
    response = admin_api.patch(f"/api/admin/nodes/{node.pk}", {"base_url": new.url + "/"})
    assert response.status_code == 200 and response.json()["base_url"] == new.url
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.base_url == new.url


def test_check_now_endpoint_returns_fresh_health(procs, admin_api):
    proc = procs()
    node = ComfyNode.objects.create(name="gpu1", base_url=proc.url)
    body = admin_api.post(f"/api/admin/nodes/{node.pk}/check").json()
    assert body["status"] == "ONLINE" and body["vram_total"] and body["class_types_count"] > 500


def test_one_hanging_node_does_not_delay_the_others(procs):
    healthy = [ComfyNode.objects.create(name=f"ok{i}", base_url=procs().url) for i in range(4)]
    hanging = ComfyNode.objects.create(name="stuck", base_url=procs(hang=True).url)
    started = timezone.now()
    t0 = time.monotonic()
    asyncio.run(health.check_nodes_async(list(ComfyNode.objects.all()), timeout=2.0))
    elapsed = time.monotonic() - t0
    for node in healthy:
        node.refresh_from_db()
        assert node.status == "ONLINE"
        assert (node.last_checked_at - started).total_seconds() < 1.5  # recorded before the hang timed out
    hanging.refresh_from_db()
    assert (hanging.last_checked_at - started).total_seconds() >= 2.0
    assert "did not answer" in hanging.last_error
    assert elapsed < 8


@pytest.mark.parametrize("garbage,fragment", [("html", "not JSON"), ("json", "")])
def test_garbage_answers_mark_offline_with_a_readable_error(procs, garbage, fragment):
    node = ComfyNode.objects.create(name="odd", base_url=procs(garbage=garbage).url)
    health.check_all_nodes()
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "OFFLINE"
    assert node.last_error and fragment in node.last_error
    assert "Traceback" not in node.last_error


def test_disabled_nodes_are_not_checked(procs):
    node = ComfyNode.objects.create(name="off", base_url=procs().url, is_active=False)
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "UNKNOWN" and node.last_checked_at is None


def test_a_big_pool_is_probed_a_few_nodes_at_a_time(monkeypatch):
    """Probing 20 nodes at once would queue their work ahead of dispatch on the runner's loop."""
    in_flight, most = 0, 0

    async def fake_probe(base_url, **kwargs):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return health.ProbeResult(ok=False, error="x", seconds=0.02)

    async def fake_db(fn, node_id, base_url, result):
        return node_id

    monkeypatch.setattr(health, "probe", fake_probe)
    monkeypatch.setattr(health, "needs_object_info", lambda node: False)
    nodes = [ComfyNode(pk=i, name=f"n{i}", base_url=f"http://127.0.0.1:{9000 + i}") for i in range(20)]
    recorded = asyncio.run(health.check_nodes_async(nodes, db=fake_db))
    assert recorded == list(range(20))
    assert most == health.HEALTH_CONCURRENCY < 20


def test_a_probe_can_reuse_a_kept_alive_client(procs):
    """The runner probes with its own node clients: no client built and torn down per probe."""
    from nodes.comfy.client import ComfyClient

    proc = procs()

    async def probe_twice():
        async with ComfyClient(proc.url) as client:
            first = await health.probe(proc.url, want_object_info=False, timeout=5, client=client)
            second = await health.probe(proc.url, want_object_info=False, timeout=5, client=client)
            return first, second, client.closed

    first, second, closed = asyncio.run(probe_twice())
    assert first.ok and second.ok and second.queue_remaining == 0
    assert not closed
