"""Programs against real processes: a key revoked on one web instance stops on the other at
once; a job's webhooks are sent by the worker processes, signed, with GPU time in usage."""

from __future__ import annotations

import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import make_user
from tests.integration.conftest import HttpApi
from tests.webhooks.conftest import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_key_revoked_on_one_web_instance_stops_on_the_other(stack_factory):
    stack = stack_factory(nodes=0, webs=2, workers=0)
    make_user("alice")
    web_a, web_b = stack.web_urls
    owner = HttpApi(web_a, "alice")
    created = owner.http.post("/api/keys", json={"name": "ci", "scopes": ["jobs:read"]}).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.get(web_b + "/api/me", headers=headers).status_code == 200
    assert httpx.get(web_a + "/api/me", headers=headers).status_code == 200
    assert owner.http.delete(f"/api/keys/{created['id']}").status_code == 204  # on instance A
    assert httpx.get(web_b + "/api/me", headers=headers).status_code == 401  # instance B, at once


def test_webhooks_are_sent_by_the_workers_and_signed(stack_factory):
    from nodes.models import ComfyNode
    from tests.factories import make_workflow

    receiver = Receiver()
    stack = stack_factory(nodes=1, webs=1, workers=1, node_args={"job_time": 0.3}, env={"WEBHOOK_ALLOW_PRIVATE": 1})
    try:
        make_user("alice")
        make_workflow()
        ComfyNode.objects.create(name="n0", base_url=stack.nodes[0].url)
        alice = HttpApi(stack.web_url, "alice")
        endpoint = alice.http.post("/api/webhooks/endpoints", json={"url": receiver.url}).json()
        job = alice.submit("tiny")
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        events = [Webhook(endpoint["secret"]).verify(r["body"], r["headers"]) for r in receiver.requests]
        assert sorted(e["type"] for e in events) == ["job.started", "job.succeeded"]
        done = next(e for e in events if e["type"] == "job.succeeded")["data"]
        assert done["id"] == job["id"] and done["status"] == "DONE" and len(done["outputs"]) == 1
        usage = alice.http.get("/api/usage").json()["totals"]
        assert usage["succeeded"] == 1 and 0.3 <= usage["gpu_seconds"] < 5
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
