"""Model files on the pages: the form's model list with online counts, a job's model files and
why it waits (both languages), the dashboard's and the node admin's models."""

from __future__ import annotations

import pytest
from django.urls import reverse

from nodes.models import ComfyNode
from tests.factories import make_job, make_node

pytestmark = pytest.mark.django_db


def test_the_form_lists_the_farms_checkpoints_with_online_counts(alice_client, txt2img):
    make_node("a", class_types=txt2img.class_types, inventory={"checkpoints": ["dream.safetensors", "sd15.ckpt"]})
    make_node("b", class_types=txt2img.class_types, inventory={"checkpoints": ["dream.safetensors"]})
    html = alice_client.get(reverse("workflow_form", args=["sd15-txt2img"])).content.decode()
    assert '<option value="dream.safetensors" selected>dream.safetensors (2 servers online)</option>' in html
    assert '<option value="sd15.ckpt">sd15.ckpt (1 server online)</option>' in html
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get(reverse("workflow_form", args=["sd15-txt2img"])).content
    assert "sd15.ckpt (в сети 1 сервер)" in html.decode()


def test_the_form_says_when_no_server_has_a_file(alice_client, txt2img):
    html = alice_client.get(reverse("workflow_form", args=["sd15-txt2img"])).content.decode()
    assert "No GPU server has a file for this field" in html


def test_a_submitted_file_no_server_has_is_shown_on_the_field(alice_client, txt2img):
    make_node("a", class_types=txt2img.class_types, inventory={"checkpoints": ["dream.safetensors"]})
    response = alice_client.post(
        reverse("job_submit", args=["sd15-txt2img"]), {"prompt": "a cat", "checkpoint": "gone.safetensors"}
    )
    assert response.status_code == 400
    assert (
        "model file &#x27;gone.safetensors&#x27; (checkpoints) is on no active GPU server" in response.content.decode()
    )


def test_the_job_page_shows_its_model_files_and_why_it_waits(alice_client, alice, tiny):
    job = make_job(alice, tiny, model_files=["checkpoints/dream.safetensors"])
    make_node("a", inventory={"checkpoints": ["other.safetensors"]})
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<code>checkpoints/dream.safetensors</code>" in html
    assert "No online GPU server has the model files: checkpoints/dream.safetensors" in html
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "Ни у одного сервера в сети нет файлов моделей: checkpoints/dream.safetensors" in html


def test_dashboard_and_node_admin_show_models(admin_client_):
    node = make_node(
        "gpu-1",
        inventory={"checkpoints": ["a.safetensors", "b.safetensors"], "loras": ["l.safetensors"]},
        held_models="checkpoints/a.safetensors",
    )
    html = admin_client_.get(reverse("admin_dashboard")).content.decode()
    assert '<td data-field="model-files">3</td>' in html
    assert "<code>checkpoints/a.safetensors</code>" in html
    ComfyNode.objects.filter(pk=node.pk).update(inventory_stale=True)
    html = admin_client_.get(reverse("admin:nodes_comfynode_change", args=[node.pk])).content.decode()
    assert "l.safetensors" in html and "b.safetensors" in html
    listing = admin_client_.get(reverse("admin:nodes_comfynode_changelist")).content.decode()
    assert "3 (stale)" in listing
