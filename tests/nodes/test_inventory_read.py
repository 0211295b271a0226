"""Reading a node's model files with its classes (a real test ComfyUI process), a failed read
kept as a stale inventory, the admin's refresh, and the farm-wide model list."""

from __future__ import annotations

import httpx
import pytest

from nodes import health
from nodes.comfy.client import ComfyClient
from nodes.comfy.errors import BadResponse
from nodes.models import ComfyNode
from testcomfy.process import spawn

pytestmark = pytest.mark.django_db(transaction=True)

FILES = {"checkpoints": ["sdxl/juggernaut.safetensors", "v1-5-pruned-emaonly.safetensors"], "loras": ["d.safetensors"]}


@pytest.fixture
def node_proc():
    proc = spawn(port=0, models=FILES)
    yield proc
    proc.kill()


def test_the_inventory_is_read_with_the_classes_and_kept_stale_when_a_read_fails(node_proc, monkeypatch):
    node = ComfyNode.objects.create(name="gpu1", base_url=node_proc.url)
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.inventory_read_at is not None and not node.inventory_stale
    assert node.inventory["checkpoints"] == FILES["checkpoints"] and node.inventory["loras"] == FILES["loras"]
    assert "custom_nodes" not in node.inventory and node.model_count == 3
    # Which inputs take which folder's files, learnt from /object_info (no list of loaders).
    assert node.model_inputs["CheckpointLoaderSimple"]["ckpt_name"]["folder"] == "checkpoints"
    assert node.model_inputs["LoraLoader"]["lora_name"]["folder"] == "loras"

    async def refuse(self, folder, *, timeout=None):
        raise BadResponse(f"GET /models/{folder} answered 500", status=500)

    monkeypatch.setattr(ComfyClient, "model_files", refuse)
    health.refresh_node(node.pk)
    node.refresh_from_db()
    assert node.status == "ONLINE" and node.inventory_stale and "answered 500" in node.inventory_error
    assert node.inventory["checkpoints"] == FILES["checkpoints"]  # the last one is kept
    assert health.needs_object_info(node)  # and read again at the next check
    monkeypatch.undo()
    health.check_all_nodes()
    node.refresh_from_db()
    assert not node.inventory_stale and node.inventory_error == ""


def test_admin_refresh_and_the_farm_model_list(node_proc, admin_api):
    node = ComfyNode.objects.create(name="gpu1", base_url=node_proc.url)
    ComfyNode.objects.create(name="gpu2", base_url="http://127.0.0.1:9", inventory={"checkpoints": ["x.ckpt"]})
    health.check_node(node.pk)
    httpx.post(node_proc.url + "/__control__", json={"models": {"checkpoints": ["sdxl/new.safetensors"]}})
    assert "sdxl/new.safetensors" not in ComfyNode.objects.get(pk=node.pk).inventory["checkpoints"]
    response = admin_api.post(f"/api/admin/nodes/{node.pk}/refresh")
    assert response.status_code == 200 and response.json()["model_files_count"] == 4
    models = admin_api.get(f"/api/admin/nodes/{node.pk}/models").json()["models"]
    assert "sdxl/new.safetensors" in models["checkpoints"]

    listing = admin_api.get("/api/admin/models", folder="checkpoints").json()
    assert [(m["name"], [n["name"] for n in m["nodes"]], m["nodes_online"]) for m in listing] == [
        ("sdxl/juggernaut.safetensors", ["gpu1"], 1),
        ("sdxl/new.safetensors", ["gpu1"], 1),
        ("v1-5-pruned-emaonly.safetensors", ["gpu1"], 1),
        ("x.ckpt", ["gpu2"], 0),
    ]
    assert [m["name"] for m in admin_api.get("/api/admin/models", name="sdxl/*").json()] == [
        "sdxl/juggernaut.safetensors",
        "sdxl/new.safetensors",
    ]
    assert [m["folder"] for m in admin_api.get("/api/admin/models", name="D.SAFE").json()] == ["loras"]
    assert admin_api.get("/api/admin/models").status_code == 200
