"""Every bundled workflow is made of stock ComfyUI nodes and passes upload validation."""

from __future__ import annotations

import json
import random

import pytest

from nodes.comfy.catalog import object_info
from workflows.catalog_rules import input_kind, is_link, literal_problem
from workflows.prompt import build_prompt, validate_inputs
from workflows.validation import validate_upload

from .conftest import example_dirs

REQUIRED_SLUGS = {
    "sd15-txt2img",
    "sd15-img2img",
    "sd15-inpaint",
    "outpaint",
    "sdxl-txt2img",
    "sdxl-base-refiner",
    "hires-fix",
    "model-upscale",
    "lora-txt2img",
    "controlnet-canny",
    "flux-txt2img",
    "unclip-variation",
    "batch-txt2img",
    "alpha-inpaint",
    "image-filters",
    "mask-composite",
    "mask-composite-alpha",
    "scale-crop",
    "frames-to-video",
    "flipbook-webp",
    "audio-to-flac",
    "video-convert",
    "wan-i2v",
    "ltxv-t2v",
    "stable-audio",
}
MEDIA_MODEL_FREE = {"frames-to-video", "flipbook-webp", "audio-to-flac", "video-convert"}
MODEL_FREE = {"image-filters", "mask-composite", "mask-composite-alpha", "scale-crop"} | MEDIA_MODEL_FREE
DIRS = example_dirs()


def _pair(folder):
    return (
        json.loads((folder / "workflow.json").read_text(encoding="utf-8")),
        json.loads((folder / "spec.json").read_text(encoding="utf-8")),
    )


def test_all_bundled_workflows_are_present():
    assert {d.name for d in DIRS} >= REQUIRED_SLUGS


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_graph_matches_the_stock_catalogue(folder):
    graph, _ = _pair(folder)
    catalog = object_info()
    for node_id, node in graph.items():
        info = catalog.get(node["class_type"])
        assert info is not None, f"{node_id}: {node['class_type']} is not a built-in node"
        for name in info["input"].get("required", {}):
            assert name in node["inputs"], f"{node_id}: required input {name} missing"
        for name, value in node["inputs"].items():
            kind = input_kind(node["class_type"], info, name)
            assert kind is not None, f"{node_id}: {node['class_type']} has no input {name}"
            if is_link(value):
                source = graph[value[0]]
                outputs = catalog[source["class_type"]]["output"]
                assert value[1] < len(outputs)
            else:
                assert literal_problem(kind, value) is None, f"{node_id}.{name}={value!r}"
                if kind.kind == "COMBO" and not kind.free_choices:
                    assert value in kind.choices


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_validate_upload_passes_cleanly(folder):
    graph, spec = _pair(folder)
    result = validate_upload((folder / "workflow.json").read_bytes(), (folder / "spec.json").read_bytes())
    assert result.warnings == []
    assert result.spec.slug == folder.name == spec["slug"]
    assert result.class_types <= set(object_info())
    for fld in result.spec.inputs:  # real users see these
        assert fld.label and fld.help, f"{fld.id} needs a label and help"


@pytest.mark.parametrize("folder", DIRS, ids=[d.name for d in DIRS])
def test_defaults_build_a_prompt_that_still_validates(folder):
    graph, spec = _pair(folder)
    values = {"prompt": "a cat"} if any(f["id"] == "prompt" and f.get("required") for f in spec["inputs"]) else {}
    extension = {"image": ".png", "mask": ".png", "video": ".mp4", "audio": ".flac"}
    uploads = {
        f["id"]: f"comfyportal/{f['id']}{extension[f['type']]}" for f in spec["inputs"] if f["type"] in extension
    }
    values.update({k: f"upload-{k}" for k in uploads})
    clean = validate_inputs(spec, values, rng=random.Random(1))
    workflow = type("W", (), {"graph": graph, "spec": spec})()
    prompt = build_prompt(workflow, clean, uploads)
    validate_upload(prompt, spec)


@pytest.mark.parametrize("slug", sorted(MODEL_FREE))
def test_model_free_workflows_load_no_weights(slug):
    folder = next(d for d in DIRS if d.name == slug)
    graph, _ = _pair(folder)
    for node in graph.values():
        assert "loader" not in object_info()[node["class_type"]]["category"].lower()


def test_mask_workflows_use_both_modes():
    modes = {}
    for folder in DIRS:
        _, spec = _pair(folder)
        for fld in spec["inputs"]:
            if fld["type"] == "mask":
                modes[folder.name] = fld.get("mode", "file")
    assert modes["sd15-inpaint"] == "file" and modes["mask-composite"] == "file"
    assert modes["alpha-inpaint"] == "alpha" and modes["mask-composite-alpha"] == "alpha"


def test_media_workflows_declare_what_they_make():
    kinds = {}
    for folder in DIRS:
        _, spec = _pair(folder)
        kinds[folder.name] = {o.get("type", "image") for o in spec["outputs"]}
        inputs = {f["type"] for f in spec["inputs"]}
        if folder.name in ("audio-to-flac",):
            assert "audio" in inputs
        if folder.name in ("video-convert",):
            assert "video" in inputs
    assert kinds["frames-to-video"] == kinds["flipbook-webp"] == kinds["wan-i2v"] == kinds["ltxv-t2v"] == {"video"}
    assert kinds["audio-to-flac"] == kinds["stable-audio"] == {"audio"}
