"""Admin API for nodes: validation, write-only auth header, drain on delete/disable."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from nodes.models import ComfyNode
from nodes.services import register_nodes_from_urls
from tests.factories import make_job, make_node, make_workflow

pytestmark = pytest.mark.django_db


def test_create_list_and_auth_header_is_write_only(admin_api):
    created = admin_api.post(
        "/api/admin/nodes",
        {"name": "gpu1", "base_url": "http://10.0.0.5:8188/", "auth_header": "Authorization: Bearer secret"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["base_url"] == "http://10.0.0.5:8188" and body["has_auth_header"] is True
    assert "secret" not in created.content.decode()
    listing = admin_api.get("/api/admin/nodes")
    assert "secret" not in listing.content.decode() and listing.json()[0]["status"] == "UNKNOWN"
    assert ComfyNode.objects.get().auth_header == "Authorization: Bearer secret"


@pytest.mark.parametrize(
    "url,rule",
    [
        ("ftp://10.0.0.5", "http"),
        ("http://", "host"),
        ("http://user:pw@10.0.0.5:8188", "credentials"),
        ("not a url", "spaces"),
        ("http://10.0.0.5:99999", "port"),
        ("file:///etc/passwd", "http"),
    ],
)
def test_invalid_urls_are_400_naming_base_url(admin_api, url, rule):
    response = admin_api.post("/api/admin/nodes", {"name": "gpu", "base_url": url})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("base_url:") and rule in response.json()["detail"]


def test_duplicate_name_is_409_and_bad_numbers_are_422(admin_api):
    assert admin_api.post("/api/admin/nodes", {"name": "gpu", "base_url": "http://a:1"}).status_code == 201
    duplicate = admin_api.post("/api/admin/nodes", {"name": "gpu", "base_url": "http://b:1"})
    assert duplicate.status_code == 409 and "name" in duplicate.json()["detail"]
    negative = admin_api.post("/api/admin/nodes", {"name": "gpu2", "base_url": "http://b:1", "max_queue": -1})
    assert negative.status_code == 422 and "max_queue" in negative.json()["detail"]


def test_delete_with_running_jobs_drains(admin_api, alice):
    node = make_node()
    job = make_job(alice, make_workflow(), status="RUNNING", node=node)
    response = admin_api.delete(f"/api/admin/nodes/{node.pk}")
    assert response.status_code == 200 and "Draining" in response.json()["detail"]
    node.refresh_from_db()
    assert node.remove_when_drained and not node.is_active
    assert admin_api.get(f"/api/admin/nodes/{node.pk}").status_code == 404
    job.status = "DONE"
    job.save()
    from nodes.health import remove_drained_nodes

    remove_drained_nodes()
    assert not ComfyNode.objects.filter(pk=node.pk).exists()


def test_disable_with_running_jobs_says_they_finish(admin_api, alice):
    node = make_node()
    make_job(alice, make_workflow(), status="RUNNING", node=node)
    body = admin_api.patch(f"/api/admin/nodes/{node.pk}", {"is_active": False}).json()
    assert body["is_active"] is False and "will finish" in body["note"]


def test_delete_idle_node_removes_it(admin_api):
    node = make_node()
    assert "removed" in admin_api.delete(f"/api/admin/nodes/{node.pk}").json()["detail"]
    assert not ComfyNode.objects.exists()


def test_register_from_comfy_nodes_is_idempotent():
    urls = ["http://10.0.0.1:8188", "http://10.0.0.2:8188/", "bogus"]
    assert len(register_nodes_from_urls(urls)) == 2
    assert register_nodes_from_urls(urls) == []
    assert sorted(ComfyNode.objects.values_list("name", flat=True)) == ["10.0.0.1-8188", "10.0.0.2-8188"]


def test_each_demo_run_reuses_its_demo_nodes_and_removes_the_surplus(settings):
    settings.DEMO_NODES = ["http://127.0.0.1:40001", "http://127.0.0.1:40002", "http://127.0.0.1:40003"]
    call_command("bootstrap", stdout=io.StringIO())
    first = {n.name: n.pk for n in ComfyNode.objects.all()}
    assert sorted(first) == ["demo-1", "demo-2", "demo-3"]
    ComfyNode.objects.update(status="ONLINE", system_stats={"devices": [{"vram_free": 1, "vram_total": 2}]})
    kept = make_node(name="gpu-real")

    settings.DEMO_NODES = ["http://127.0.0.1:40101", "http://127.0.0.1:40102"]  # the next run, new ports
    call_command("bootstrap", stdout=io.StringIO())

    nodes = {n.name: n for n in ComfyNode.objects.all()}
    assert sorted(nodes) == ["demo-1", "demo-2", "gpu-real"]
    assert nodes["demo-1"].pk == first["demo-1"] and nodes["demo-1"].base_url == "http://127.0.0.1:40101"
    assert nodes["demo-2"].base_url == "http://127.0.0.1:40102"
    for name in ("demo-1", "demo-2"):  # the old server's figures are not the new one's
        assert nodes[name].status == "UNKNOWN" and nodes[name].system_stats == {}
    assert nodes["gpu-real"].pk == kept.pk
