"""A farm whose nodes hold different model files, end to end: real daphne, qcluster and three
test ComfyUI nodes. Each job lands on a node that has its checkpoint; a file added to a node is
offered after a refresh, without a restart."""

from __future__ import annotations

import httpx
import pytest

from jobs.models import Job
from nodes.models import ComfyNode
from tests.conftest import Api, token_for
from tests.factories import upload_example
from tests.harness import wait_for
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = {
    "n0": ["a.safetensors"],
    "n1": ["b.safetensors"],
    "n2": ["a.safetensors", "c.safetensors"],
}


def offered(api: HttpApi) -> list[str]:
    fields = api.http.get("/api/workflows/sd15-txt2img").json()["ui_schema"]["fields"]
    return next(f for f in fields if f["id"] == "checkpoint")["choices"]


def test_jobs_land_where_their_files_are_and_new_files_show_after_a_refresh(stack_factory, user_factory):
    stack = stack_factory(nodes=0, node_args={"step_time": 0.01})
    nodes = {}
    for name, files in FILES.items():
        proc = stack.add_node(models={"checkpoints": files})
        nodes[name] = (proc, ComfyNode.objects.create(name=name, base_url=proc.url))
    wait_for(
        lambda: ComfyNode.objects.filter(status="ONLINE", inventory_read_at__isnull=False).count() == 3,
        timeout=30,
        what="the nodes and their model files",
    )
    alice = user_factory("alice", max_concurrent_jobs=10)
    admin = user_factory("root", role="ADMIN")
    upload_example("sd15-txt2img")
    api = HttpApi(stack.web_url, "alice")
    assert offered(api) == ["a.safetensors", "b.safetensors", "c.safetensors"]

    jobs = [
        api.submit("sd15-txt2img", {"prompt": "a cat", "steps": 1, "checkpoint": name})
        for name in ["b.safetensors", "c.safetensors", "a.safetensors", "b.safetensors", "c.safetensors"]
    ]
    refused = api.http.post(
        "/api/jobs", json={"workflow": "sd15-txt2img", "inputs": {"prompt": "x", "checkpoint": "d.safetensors"}}
    )
    assert refused.status_code == 422 and "d.safetensors" in refused.json()["errors"]["checkpoint"]
    for job in jobs:
        done = finished(api, job["id"])
        assert done["status"] == "DONE", done
        name = done["inputs"]["checkpoint"]
        assert name in FILES[done["node"]], (name, done["node"])
        assert done["model_files"] == [f"checkpoints/{name}"]
    # The node remembers what it was last sent (what ComfyUI holds): model affinity reads it.
    last = Job.objects.filter(node__name="n1").order_by("-started_at").first()
    assert ComfyNode.objects.get(name="n1").held_model_keys == last.model_files

    # An admin copies a file to n1: offered once its model list is read again, no restart.
    proc, node = nodes["n1"]
    httpx.post(proc.url + "/__control__", json={"models": {"checkpoints": ["d.safetensors"]}}).raise_for_status()
    assert "d.safetensors" not in offered(api)
    admin_api = Api(token_for(admin))
    refreshed = admin_api.post(f"/api/admin/nodes/{node.pk}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["model_files_count"] == 2
    assert "d.safetensors" in offered(api)
    listing = admin_api.get("/api/admin/models", folder="checkpoints", name="d.").json()
    assert [(m["name"], [n["name"] for n in m["nodes"]]) for m in listing] == [("d.safetensors", ["n1"])]
    job = api.submit("sd15-txt2img", {"prompt": "a dog", "steps": 1, "checkpoint": "d.safetensors"})
    done = finished(api, job["id"])
    assert done["status"] == "DONE" and done["node"] == "n1"
    assert alice.pk
