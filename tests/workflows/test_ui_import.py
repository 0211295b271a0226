"""Importing a UI-format workflow (as ComfyUI saves it) through the admin API and Django Admin."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from bench.ui_corpus import template_files
from nodes.comfy.catalog import object_info
from nodes.models import ComfyNode
from tests.conftest import PASSWORD
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

# One of ComfyUI's own templates: LoadImage → ImageScaleBy (lanczos ×2) → SaveImage, plus an
# ImageCompare viewer and a note.
TEMPLATE = "utility_interpolation_image_upscale"


def template_bytes(name: str = TEMPLATE) -> bytes:
    return next(p for p in template_files() if p.stem == name).read_bytes()


def upload_file(data: bytes, name: str = "workflow.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def test_draft_spec_converts_a_ui_workflow(admin_api):
    response = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes())})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["converted"] is True
    assert {k: v["class_type"] for k, v in body["graph"].items()} == {
        "2": "LoadImage",
        "3": "ImageScaleBy",
        "5": "SaveImage",
    }
    assert body["spec"]["inputs"][0]["bind"] == [{"node": "2", "input": "image"}]
    assert body["spec"]["outputs"] == [{"node": "5", "type": "image"}]
    assert any("ImageCompare" in w for w in body["warnings"])


def test_an_api_format_workflow_drafts_as_before(admin_api):
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    response = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(json.dumps(graph).encode())}
    )
    assert response.status_code == 200 and response.json()["converted"] is False
    assert response.json()["graph"] is None  # the admin's own file: its ids are already known


def test_upload_of_a_ui_workflow_stores_the_converted_graph(admin_api):
    draft = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes())})
    spec = {**draft.json()["spec"], "slug": "upscale-2x", "name": "Upscale ×2"}
    created = admin_api.multipart(
        "/api/admin/workflows",
        {"workflow": upload_file(template_bytes()), "spec": upload_file(json.dumps(spec).encode(), "spec.json")},
    )
    assert created.status_code == 201, created.json()
    workflow = Workflow.objects.get(slug="upscale-2x")
    assert set(workflow.graph) == {"2", "3", "5"}
    assert workflow.graph["3"]["inputs"] == {"upscale_method": "lanczos", "scale_by": 2, "image": ["2", 0]}
    assert workflow.class_types == ["ImageScaleBy", "LoadImage", "SaveImage"]
    assert any("ImageCompare" in w for w in workflow.warnings)


def test_a_workflow_needing_paid_api_nodes_is_refused_with_the_list(admin_api):
    response = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes("api_bfl_flux1_expand_image"))}
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "FluxProExpandNode (paid API node)" in detail and "no GPU server has" in detail


def test_the_active_nodes_classes_decide_what_can_be_imported(admin_api):
    classes = sorted(set(object_info()) - {"ImageScaleBy"})
    ComfyNode.objects.create(name="gpu", base_url="http://127.0.0.1:9", class_types=classes)
    ComfyNode.objects.create(name="off", base_url="http://127.0.0.1:9", is_active=False, class_types=["ImageScaleBy"])
    response = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes())})
    assert response.status_code == 400
    assert "ImageScaleBy" in response.json()["detail"]


def test_a_broken_ui_workflow_is_refused_naming_the_node(admin_api):
    workflow = json.loads(template_bytes())
    workflow["links"] = [link for link in workflow["links"] if link[0] != 4]  # ImageScaleBy → SaveImage
    response = admin_api.multipart(
        "/api/admin/workflows", {"workflow": upload_file(json.dumps(workflow).encode()), "spec": upload_file(b"{}")}
    )
    assert response.status_code == 400
    assert "node 5 (SaveImage): input 'images': link 4 is not in the workflow" in response.json()["detail"]


def admin_client(admin_user) -> Client:
    client = Client()
    assert client.login(username=admin_user.username, password=PASSWORD)
    return client


def field_value(html: str, name: str) -> str:
    textarea = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    if textarea:
        return unescape(textarea.group(1)).lstrip("\n")
    hidden = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert hidden, f"no field {name}"
    return unescape(hidden.group(1))


def test_django_admin_drafts_shows_and_saves_a_ui_workflow(admin_user):
    client = admin_client(admin_user)
    url = "/admin/workflows/workflow/add/"
    page = client.post(url, {"workflow_file": upload_file(template_bytes()), "_draft": "1"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "converted to the API format (3 nodes)" in html
    assert "ImageCompare" in html  # the warnings are shown
    spec = json.loads(field_value(html, "spec_text"))
    assert spec["inputs"][0]["bind"] == [{"node": "2", "input": "image"}]
    kept = field_value(html, "workflow_json")
    assert json.loads(kept) == json.loads(template_bytes())  # no second upload needed

    spec.update(slug="admin-upscale", name="Upscale in the admin")
    spec["inputs"][0]["label"] = "Your picture"
    saved = client.post(url, {"workflow_json": kept, "spec_text": json.dumps(spec), "_save": "1"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    workflow = Workflow.objects.get(slug="admin-upscale")
    assert workflow.spec["inputs"][0]["label"] == "Your picture"
    assert set(workflow.graph) == {"2", "3", "5"} and workflow.is_active


def test_django_admin_keeps_the_workflow_when_the_spec_is_wrong(admin_user):
    client = admin_client(admin_user)
    url = "/admin/workflows/workflow/add/"
    bad_spec = {"spec_version": "1.0", "slug": "x", "name": "x", "version": "1.0", "outputs": [{"node": "99"}]}
    page = client.post(url, {"workflow_file": upload_file(template_bytes()), "spec_text": json.dumps(bad_spec)})
    html = page.content.decode()
    assert page.status_code == 200 and "output node &#x27;99&#x27; is not in the workflow" in html
    assert json.loads(field_value(html, "workflow_json")) == json.loads(template_bytes())


def png_with(**texts) -> bytes:
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, (text, zipped) in texts.items():
        info.add_text(key, text, zip=zipped)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize("zipped", [False, True])
def test_a_png_saved_by_comfyui_brings_its_workflow(admin_api, zipped):
    workflow = template_bytes().decode()
    prompt = json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}})
    image = png_with(prompt=(prompt, zipped), workflow=(workflow, zipped))
    response = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(image, "fox.png")})
    assert response.status_code == 200, response.json()
    assert response.json()["converted"] is True  # the editor's workflow, not the prompt
    assert set(response.json()["graph"]) == {"2", "3", "5"}


def test_a_png_without_a_workflow_is_refused(admin_api):
    response = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(png_with(), "a.png")})
    assert response.status_code == 400 and "carries no ComfyUI workflow" in response.json()["detail"]


def test_the_draft_is_named_after_the_workflow(admin_api):
    response = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes("image_z_image_turbo"))}
    )
    spec = response.json()["spec"]
    assert (spec["name"], spec["slug"]) == ("Text to Image (Z-Image-Turbo)", "text-to-image-z-image-turbo")
    assert {"diffusion_model", "text_encoder", "vae", "prompt", "seed", "width"} <= {f["id"] for f in spec["inputs"]}
    models = {(m["directory"], m["name"]): m for m in response.json()["models"]}
    assert set(models) == {
        ("diffusion_models", "z_image_turbo_bf16.safetensors"),
        ("text_encoders", "qwen_3_4b.safetensors"),
        ("vae", "ae.safetensors"),
    }
    assert models[("vae", "ae.safetensors")]["url"].startswith("https://huggingface.co/")
    assert models[("vae", "ae.safetensors")]["node"] == "57:29"
    response = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes(), "pixel_art_upscale.json")}
    )
    spec = response.json()["spec"]
    assert (spec["name"], spec["slug"]) == ("Pixel art upscale", "pixel-art-upscale")


def test_django_admin_lists_the_model_files_to_install(admin_user):
    page = admin_client(admin_user).post(
        "/admin/workflows/workflow/add/",
        {"workflow_file": upload_file(template_bytes("image_z_image_turbo")), "_draft": "1"},
    )
    html = page.content.decode()
    assert "diffusion_models/z_image_turbo_bf16.safetensors" in html
    assert 'href="https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/vae/ae.safetensors"' in html


def custom_node_workflow() -> bytes:
    workflow = json.loads(template_bytes())
    scale = next(n for n in workflow["nodes"] if n["type"] == "ImageScaleBy")
    scale["type"] = "PixelSorter"
    scale["properties"] = {"cnr_id": "comfyui-pixelsort"}
    scale["widgets_values"] = ["hue", 0.25]
    return json.dumps(workflow).encode()


def test_a_chosen_nodes_catalogue_converts_its_custom_nodes(admin_api, monkeypatch):
    from workflows import services

    refused = admin_api.multipart("/api/admin/workflows/draft-spec", {"workflow": upload_file(custom_node_workflow())})
    assert refused.status_code == 400 and "PixelSorter (custom node from comfyui-pixelsort)" in refused.json()["detail"]

    catalog = dict(object_info())
    catalog["PixelSorter"] = {
        "input": {
            "required": {
                "image": ["IMAGE"],
                "sort_by": [["hue", "brightness"], {}],
                "threshold": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}],
            }
        },
        "input_order": {"required": ["image", "sort_by", "threshold"]},
        "output": ["IMAGE"],
        "output_node": False,
    }
    asked = []
    monkeypatch.setattr(services, "node_catalog", lambda name: asked.append(name) or catalog)
    draft = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(custom_node_workflow()), "node": "gpu-custom"}
    )
    assert draft.status_code == 200, draft.json()
    assert draft.json()["graph"]["3"] == {
        "inputs": {"sort_by": "hue", "threshold": 0.25, "image": ["2", 0]},
        "class_type": "PixelSorter",
        "_meta": {"title": "PixelSorter"},
    }
    spec = {**draft.json()["spec"], "slug": "pixel-sort"}
    created = admin_api.multipart(
        "/api/admin/workflows",
        {
            "workflow": upload_file(custom_node_workflow()),
            "spec": upload_file(json.dumps(spec).encode(), "spec.json"),
            "node": "gpu-custom",
        },
    )
    assert created.status_code == 201, created.json()
    assert asked == ["gpu-custom", "gpu-custom"]
    stored = Workflow.objects.get(slug="pixel-sort")
    assert stored.graph["3"]["class_type"] == "PixelSorter"
    assert any("PixelSorter" in w and "custom node" in w for w in stored.warnings)


def test_a_node_that_cannot_be_asked_is_a_400(admin_api):
    missing = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes()), "node": "nope"}
    )
    assert missing.status_code == 400 and "no GPU server named 'nope'" in missing.json()["detail"]
    ComfyNode.objects.create(name="down", base_url="http://127.0.0.1:9")
    down = admin_api.multipart(
        "/api/admin/workflows/draft-spec", {"workflow": upload_file(template_bytes()), "node": "down"}
    )
    assert down.status_code == 400 and "down did not give its node catalogue" in down.json()["detail"]
