"""draft_spec proposes a spec that validates against the same graph."""

from __future__ import annotations

import pytest

from workflows.drafting import draft_spec
from workflows.validation import validate_upload

from .conftest import example_dirs, load_example

SLUGS = [d.name for d in example_dirs()]


@pytest.mark.parametrize("slug", SLUGS)
def test_draft_of_every_bundled_graph_validates(slug):
    graph, _ = load_example(slug)
    draft = draft_spec(graph, slug=slug, name=slug.title())
    result = validate_upload(graph, draft)
    assert result.spec.slug == slug
    assert result.spec.outputs


def test_txt2img_draft_recognizes_the_usual_inputs(txt2img):
    graph, _ = txt2img
    draft = draft_spec(graph)
    fields = {f["id"]: f for f in draft["inputs"]}
    assert fields["prompt"]["bind"] == [{"node": "6", "input": "text"}] and fields["prompt"]["required"]
    assert fields["negative_prompt"]["bind"] == [{"node": "7", "input": "text"}]
    assert fields["negative_prompt"]["default"] == graph["7"]["inputs"]["text"]
    assert fields["seed"]["type"] == "seed" and fields["seed"]["default"] == -1
    assert fields["steps"]["default"] == 20 and fields["steps"]["min"] == 1
    assert fields["cfg"]["type"] == "float"
    assert fields["sampler"]["default"] == "euler" and "dpmpp_2m" in fields["sampler"]["choices"]
    assert fields["width"]["default"] == 512 and fields["batch_size"]["max"] == 8
    assert fields["checkpoint"]["choices"] == ["v1-5-pruned-emaonly.safetensors"]
    assert draft["outputs"] == [{"node": "9", "type": "image"}]
    assert draft["category"] == "txt2img"


def test_negative_found_through_controlnet():
    graph, _ = load_example("controlnet-canny")
    fields = {f["id"]: f for f in draft_spec(graph)["inputs"]}
    assert fields["negative_prompt"]["bind"] == [{"node": "7", "input": "text"}]
    assert "width" not in fields  # linked from GetImageSize: not a value to set


def test_shared_settings_bind_every_sampler():
    graph, _ = load_example("sdxl-base-refiner")
    fields = {f["id"]: f for f in draft_spec(graph)["inputs"]}
    assert {b["node"] for b in fields["seed"]["bind"]} == {"10", "11"}
    assert {b["node"] for b in fields["prompt"]["bind"]} == {"6", "15"}
    assert {b["node"] for b in fields["steps"]["bind"]} == {"10", "11"}


def test_masks_file_and_alpha():
    inpaint = {f["id"]: f for f in draft_spec(load_example("sd15-inpaint")[0])["inputs"]}
    assert inpaint["mask"]["for_image"] == "image" and inpaint["mask"].get("mode", "file") == "file"
    alpha = {f["id"]: f for f in draft_spec(load_example("alpha-inpaint")[0])["inputs"]}
    assert alpha["mask"]["mode"] == "alpha" and "bind" not in alpha["mask"]


def test_draft_of_a_model_free_graph():
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    draft = draft_spec(graph)
    assert draft["inputs"] == [] and draft["outputs"] == [{"node": "3", "type": "image"}]
    validate_upload(graph, draft)


@pytest.mark.parametrize("bad", [[], "x", {"nodes": [], "links": []}])
def test_draft_refuses_what_is_not_an_api_graph(bad):
    with pytest.raises(ValueError, match="API-format graph"):
        draft_spec(bad)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_number_json_cannot_hold_gives_no_field_not_a_crash(txt2img, value):
    """Python's JSON reader accepts Infinity and NaN; such a default once crashed the draft (a 500)."""
    graph, _ = txt2img
    graph = {nid: {**node, "inputs": dict(node["inputs"])} for nid, node in graph.items()}
    sampler = next(nid for nid, node in graph.items() if node["class_type"] == "KSampler")
    latent = next(nid for nid, node in graph.items() if node["class_type"] == "EmptyLatentImage")
    graph[sampler]["inputs"]["steps"] = value
    graph[latent]["inputs"]["width"] = value
    fields = {f["id"] for f in draft_spec(graph)["inputs"]}
    assert "steps" not in fields and "width" not in fields and "prompt" in fields


@pytest.mark.parametrize(
    ("slug", "field", "output"),
    [("video-convert", ("video", "video"), "video"), ("audio-to-flac", ("audio", "audio"), "audio")],
)
def test_draft_of_a_media_graph_takes_and_gives_media(slug, field, output):
    graph, _ = load_example(slug)
    spec = draft_spec(graph, slug=slug, name=slug)
    assert spec["spec_version"] == "1.1"
    assert (spec["inputs"][0]["id"], spec["inputs"][0]["type"]) == field
    assert [o["type"] for o in spec["outputs"]] == [output]
    validate_upload(graph, spec)
