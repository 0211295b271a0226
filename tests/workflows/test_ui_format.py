"""The UI-format converter on hand-made graphs: one test per rule of ComfyUI's frontend it follows."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nodes.comfy.catalog import object_info
from testcomfy.catalog import Catalog as NodeCatalog
from testcomfy.validation import Validator
from workflows.drafting import draft_spec
from workflows.ui_format import UIConversionError, convert_ui_workflow, is_ui_format
from workflows.validation import WorkflowInvalid, validate_upload, workflow_graph


def node(node_id: int, cls: str, widgets: Any = None, inputs=(), outputs=(), mode: int = 0, **extra) -> dict:
    """A UI node. ``inputs``: (name, type, link) or (name, type, link, "widget") for a widget input."""
    return {
        "id": node_id,
        "type": cls,
        "pos": [0, 0],
        "size": [100, 100],
        "flags": {},
        "order": 0,
        "mode": mode,
        "inputs": [
            {"name": i[0], "type": i[1], "link": i[2], **({"widget": {"name": i[0]}} if len(i) > 3 else {})}
            for i in inputs
        ],
        "outputs": [{"name": t, "type": t, "links": []} for t in outputs],
        "properties": {"Node name for S&R": cls},
        "widgets_values": [] if widgets is None else widgets,
        **extra,
    }


def ui(nodes: list, links: list, subgraphs: list | None = None) -> dict:
    return {
        "id": "00000000-0000-4000-8000-000000000000",
        "last_node_id": 99,
        "last_link_id": 99,
        "nodes": nodes,
        "links": links,
        "groups": [{"id": 1, "title": "Step 1", "bounding": [0, 0, 10, 10]}],
        "definitions": {"subgraphs": subgraphs or []},
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def convert(workflow: dict, **kwargs):
    return convert_ui_workflow(workflow, object_info(), **kwargs)


def invert_chain(middle_mode: int = 0) -> dict:
    """LoadImage → ImageInvert → SaveImage, with a note and a group."""
    return ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(2, "ImageInvert", inputs=[("image", "IMAGE", 10)], outputs=["IMAGE"], mode=middle_mode),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 11)]),
            node(4, "MarkdownNote", ["# read me"]),
        ],
        [[10, 1, 0, 2, 0, "IMAGE"], [11, 2, 0, 3, 0, "IMAGE"]],
    )


def validator() -> Validator:
    return Validator(NodeCatalog(input_files=list, model_files=lambda folder: []), lambda name: True, "/comfy")


def test_a_chain_becomes_the_api_prompt_comfyui_would_receive():
    prompt = convert(invert_chain()).prompt
    assert prompt == {
        "1": {"inputs": {"image": "photo.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"}},
        "2": {"inputs": {"image": ["1", 0]}, "class_type": "ImageInvert", "_meta": {"title": "Invert Image Colors"}},
        "3": {
            "inputs": {"filename_prefix": "out", "images": ["2", 0]},
            "class_type": "SaveImage",
            "_meta": {"title": "Save Image"},
        },
    }  # the upload button's "image" value, the note and the group are gone
    ok, error, _, node_errors = validator().validate_prompt(prompt)
    assert ok, (error, node_errors)


def test_is_ui_format():
    assert is_ui_format(invert_chain())
    assert not is_ui_format({"1": {"class_type": "LoadImage", "inputs": {}}})


def sampler_graph(ksampler_widgets: list, seed_link: int | None = None, extra_nodes=(), extra_links=()) -> dict:
    nodes = [
        node(4, "CheckpointLoaderSimple", ["model.safetensors"], outputs=["MODEL", "CLIP", "VAE"]),
        node(6, "CLIPTextEncode", ["a red fox"], inputs=[("clip", "CLIP", 21)], outputs=["CONDITIONING"]),
        node(7, "CLIPTextEncode", ["blurry"], inputs=[("clip", "CLIP", 22)], outputs=["CONDITIONING"]),
        node(5, "EmptyLatentImage", [512, 768, 1], outputs=["LATENT"]),
        node(
            3,
            "KSampler",
            ksampler_widgets,
            inputs=[
                ("model", "MODEL", 20),
                ("positive", "CONDITIONING", 23),
                ("negative", "CONDITIONING", 24),
                ("latent_image", "LATENT", 25),
                ("seed", "INT", seed_link, "widget"),
            ],
            outputs=["LATENT"],
        ),
        node(8, "VAEDecode", inputs=[("samples", "LATENT", 26), ("vae", "VAE", 27)], outputs=["IMAGE"]),
        node(9, "SaveImage", ["fox"], inputs=[("images", "IMAGE", 28)]),
        *extra_nodes,
    ]
    links = [
        [20, 4, 0, 3, 0, "MODEL"],
        [21, 4, 1, 6, 0, "CLIP"],
        [22, 4, 1, 7, 0, "CLIP"],
        [23, 6, 0, 3, 1, "CONDITIONING"],
        [24, 7, 0, 3, 2, "CONDITIONING"],
        [25, 5, 0, 3, 3, "LATENT"],
        [26, 3, 0, 8, 0, "LATENT"],
        [27, 4, 2, 8, 1, "VAE"],
        [28, 8, 0, 9, 0, "IMAGE"],
        *extra_links,
    ]
    return ui(nodes, links)


def test_seed_control_value_is_skipped():
    prompt = convert(sampler_graph([42, "randomize", 25, 6.5, "euler", "karras", 0.9])).prompt
    assert prompt["3"]["inputs"] | {} == {
        "seed": 42,
        "steps": 25,
        "cfg": 6.5,
        "sampler_name": "euler",
        "scheduler": "karras",
        "denoise": 0.9,
        "model": ["4", 0],
        "positive": ["6", 0],
        "negative": ["7", 0],
        "latent_image": ["5", 0],
    }
    assert prompt["5"]["inputs"] == {"width": 512, "height": 768, "batch_size": 1}


def test_an_old_save_without_the_control_value_still_maps():
    prompt = convert(sampler_graph([42, 25, 6.5, "euler", "karras", 0.9])).prompt
    assert prompt["3"]["inputs"]["steps"] == 25 and prompt["3"]["inputs"]["denoise"] == 0.9


def test_a_primitive_node_value_is_inlined_into_the_converted_widget():
    primitive = node(30, "PrimitiveNode", [777, "fixed"], outputs=["INT"])
    graph = sampler_graph(
        [1, "randomize", 25, 6.5, "euler", "karras", 0.9],
        seed_link=31,
        extra_nodes=[primitive],
        extra_links=[[31, 30, 0, 3, 4, "INT"]],
    )
    prompt = convert(graph).prompt
    assert prompt["3"]["inputs"]["seed"] == 777
    assert "30" not in prompt  # the primitive itself is no node of the prompt


def test_a_converted_widget_linked_to_a_real_node_becomes_a_link():
    graph = sampler_graph(
        [1, "randomize", 25, 6.5, "euler", "karras", 0.9],
        seed_link=31,
        extra_nodes=[node(30, "PrimitiveInt", [99, "fixed"], outputs=["INT"])],
        extra_links=[[31, 30, 0, 3, 4, "INT"]],
    )
    prompt = convert(graph).prompt
    assert prompt["3"]["inputs"]["seed"] == ["30", 0]
    assert prompt["30"]["inputs"] == {"value": 99}  # its own control value skipped too
    ok, error, _, node_errors = validator().validate_prompt(copy.deepcopy(prompt))
    assert error is None or error["type"] == "prompt_outputs_failed_validation"
    assert all(e["type"] == "value_not_in_list" for entry in node_errors.values() for e in entry["errors"])  # model


def test_reroute_chains_are_followed():
    graph = ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(20, "Reroute", inputs=[("", "*", 10)], outputs=["IMAGE"]),
            node(21, "Reroute", inputs=[("", "*", 11)], outputs=["IMAGE"]),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 12)]),
        ],
        [[10, 1, 0, 20, 0, "*"], [11, 20, 0, 21, 0, "*"], [12, 21, 0, 3, 0, "IMAGE"]],
    )
    prompt = convert(graph).prompt
    assert set(prompt) == {"1", "3"} and prompt["3"]["inputs"]["images"] == ["1", 0]


def test_a_bypassed_node_passes_its_input_through():
    prompt = convert(invert_chain(middle_mode=4)).prompt
    assert "2" not in prompt
    assert prompt["3"]["inputs"]["images"] == ["1", 0]


def test_a_muted_node_is_removed_and_its_consumer_gets_nothing():
    graph = invert_chain(middle_mode=2)
    graph["nodes"].append(node(5, "PreviewImage", inputs=[("images", "IMAGE", 12)]))
    graph["links"].append([12, 1, 0, 5, 0, "IMAGE"])
    prompt = convert(graph).prompt
    assert "2" not in prompt and "images" not in prompt["3"]["inputs"]
    assert prompt["5"]["inputs"]["images"] == ["1", 0]


def test_a_muted_output_node_is_not_sent():
    graph = invert_chain()
    graph["nodes"].append(node(5, "PreviewImage", inputs=[("images", "IMAGE", 12)], mode=2))
    graph["links"].append([12, 1, 0, 5, 0, "IMAGE"])
    assert "5" not in convert(graph).prompt


def test_nodes_that_feed_no_output_are_left_out_with_a_warning():
    graph = invert_chain()
    graph["nodes"].append(node(5, "LoadImage", ["other.png", "image"], outputs=["IMAGE", "MASK"]))
    conversion = convert(graph)
    assert "5" not in conversion.prompt
    assert any("feed no output node: 5" in w for w in conversion.warnings)


def scale_subgraph(inner_subgraph: dict | None = None) -> dict:
    """A subgraph "Scale" with an IMAGE input, a promoted width widget, and an IMAGE output."""
    inner_nodes = [
        node(
            1,
            "ImageScale",
            ["bilinear", 64, 48, "disabled"],
            inputs=[("image", "IMAGE", 1), ("width", "INT", 2, "widget")],
            outputs=["IMAGE"],
        )
    ]
    links = [
        {"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "IMAGE"},
        {"id": 2, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 1, "type": "INT"},
        {"id": 3, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
    ]
    return {
        "id": "aaaaaaaa-0000-4000-8000-000000000001",
        "name": "Scale",
        "inputs": [
            {"id": "i1", "name": "image", "type": "IMAGE", "linkIds": [1]},
            {"id": "i2", "name": "width", "type": "INT", "linkIds": [2]},
        ],
        "outputs": [{"id": "o1", "name": "IMAGE", "type": "IMAGE", "linkIds": [3]}],
        "widgets": [],
        "nodes": inner_nodes,
        "links": links,
    }


def graph_with_subgraph(instance_widgets: list, mode: int = 0) -> dict:
    definition = scale_subgraph()
    return ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(
                7,
                definition["id"],
                instance_widgets,
                inputs=[("image", "IMAGE", 10), ("width", "INT", None, "widget")],
                outputs=["IMAGE"],
                mode=mode,
            ),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 11)]),
        ],
        [[10, 1, 0, 7, 0, "IMAGE"], [11, 7, 0, 3, 0, "IMAGE"]],
        [definition],
    )


def test_a_subgraph_is_flattened_with_readable_ids():
    prompt = convert(graph_with_subgraph([])).prompt
    assert set(prompt) == {"1", "7:1", "3"}
    assert prompt["7:1"]["inputs"] == {
        "upscale_method": "bilinear",
        "width": 64,  # no value on the subgraph node: the inner widget keeps its own
        "height": 48,
        "crop": "disabled",
        "image": ["1", 0],
    }
    assert prompt["3"]["inputs"]["images"] == ["7:1", 0]


def test_the_subgraph_nodes_own_widget_value_wins():
    prompt = convert(graph_with_subgraph([200])).prompt
    assert prompt["7:1"]["inputs"]["width"] == 200


def test_a_bypassed_subgraph_node_passes_its_input_through():
    prompt = convert(graph_with_subgraph([], mode=4)).prompt
    assert set(prompt) == {"1", "3"} and prompt["3"]["inputs"]["images"] == ["1", 0]


def test_nested_subgraphs_get_nested_ids():
    inner = scale_subgraph()
    outer = {
        "id": "bbbbbbbb-0000-4000-8000-000000000002",
        "name": "Outer",
        "inputs": [{"id": "j1", "name": "image", "type": "IMAGE", "linkIds": [1]}],
        "outputs": [{"id": "p1", "name": "IMAGE", "type": "IMAGE", "linkIds": [3]}],
        "nodes": [
            node(
                5,
                inner["id"],
                [96],
                inputs=[("image", "IMAGE", 1), ("width", "INT", None, "widget")],
                outputs=["IMAGE"],
            ),
            node(6, "ImageInvert", inputs=[("image", "IMAGE", 2)], outputs=["IMAGE"]),
        ],
        "links": [
            {"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 5, "target_slot": 0, "type": "IMAGE"},
            {"id": 2, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0, "type": "IMAGE"},
            {"id": 3, "origin_id": 6, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
        ],
    }
    graph = ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(12, outer["id"], inputs=[("image", "IMAGE", 10)], outputs=["IMAGE"]),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 11)]),
        ],
        [[10, 1, 0, 12, 0, "IMAGE"], [11, 12, 0, 3, 0, "IMAGE"]],
        [outer, inner],
    )
    prompt = convert(graph).prompt
    assert set(prompt) == {"1", "12:5:1", "12:6", "3"}
    assert prompt["12:5:1"]["inputs"]["image"] == ["1", 0]
    assert prompt["12:5:1"]["inputs"]["width"] == 96
    assert prompt["12:6"]["inputs"]["image"] == ["12:5:1", 0]
    assert prompt["3"]["inputs"]["images"] == ["12:6", 0]
    ok, error, _, node_errors = validator().validate_prompt(prompt)
    assert ok, (error, node_errors)


def test_dynamic_combo_values_follow_their_key():
    graph = ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(
                2,
                "ResizeImageMaskNode",
                ["scale dimensions", 640, 360, "center", "lanczos"],
                inputs=[("input", "IMAGE,MASK", 10)],
                outputs=["IMAGE"],
            ),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 11)]),
        ],
        [[10, 1, 0, 2, 0, "IMAGE"], [11, 2, 0, 3, 0, "IMAGE"]],
    )
    inputs = convert(graph).prompt["2"]["inputs"]
    assert inputs == {
        "resize_type": "scale dimensions",
        "resize_type.width": 640,
        "resize_type.height": 360,
        "resize_type.crop": "center",
        "scale_method": "lanczos",
        "input": ["1", 0],
    }
    ok, error, _, node_errors = validator().validate_prompt(convert(graph).prompt)
    assert ok, (error, node_errors)


def test_nested_dynamic_combos():
    graph = ui(
        [
            node(1, "LoadVideo", ["clip.mp4", "image"], outputs=["VIDEO"]),
            node(2, "SaveVideo", ["video/out", "mp4", "h264", "auto", "auto"], inputs=[("video", "VIDEO", 10)]),
        ],
        [[10, 1, 0, 2, 0, "VIDEO"]],
    )
    inputs = convert(graph).prompt["2"]["inputs"]
    assert inputs == {
        "filename_prefix": "video/out",
        "format": "mp4",
        "format.codec": "h264",
        "format.codec.encoding": "auto",
        "codec": "auto",
        "video": ["1", 0],
    }


def test_an_unknown_dynamic_combo_key_is_refused():
    graph = ui(
        [
            node(1, "LoadVideo", ["clip.mp4", "image"], outputs=["VIDEO"]),
            node(2, "SaveVideo", ["video/out", "gif", "auto"], inputs=[("video", "VIDEO", 10)]),
        ],
        [[10, 1, 0, 2, 0, "VIDEO"]],
    )
    with pytest.raises(UIConversionError, match=r"node 2 \(SaveVideo\): 'gif' is not an option of 'format'"):
        convert(graph)


# --- refusals -----------------------------------------------------------------------------------


def test_missing_classes_are_listed_with_what_they_are():
    graph = invert_chain()
    graph["nodes"][1]["type"] = "ImageSharpenPlus"
    graph["nodes"][1]["properties"] = {"cnr_id": "comfyui-kjnodes", "ver": "1.0"}
    graph["nodes"].append(node(5, "GeminiImage2Node", ["a cat"], outputs=["IMAGE"]))
    graph["nodes"].append(node(6, "PreviewImage", inputs=[("images", "IMAGE", 12)]))
    graph["links"].append([12, 5, 0, 6, 0, "IMAGE"])
    with pytest.raises(UIConversionError) as caught:
        convert(graph)
    assert caught.value.missing == {
        "ImageSharpenPlus": "custom node from comfyui-kjnodes",
        "GeminiImage2Node": "paid API node",
    }
    assert "GeminiImage2Node (paid API node)" in str(caught.value)


def test_the_farms_classes_decide_what_is_missing():
    available = set(object_info()) - {"ImageInvert"}
    with pytest.raises(UIConversionError) as caught:
        convert(invert_chain(), available=available)
    assert list(caught.value.missing) == ["ImageInvert"]
    # A bypassed node need not exist anywhere: it never reaches ComfyUI.
    assert "2" not in convert(invert_chain(middle_mode=4), available=available).prompt


def test_a_dangling_link_is_refused_naming_the_node():
    graph = invert_chain()
    graph["links"] = graph["links"][:1]  # link 11 into SaveImage is gone
    with pytest.raises(
        UIConversionError, match=r"node 3 \(SaveImage\): input 'images': link 11 is not in the workflow"
    ):
        convert(graph)


def test_a_link_to_a_missing_node_is_refused():
    graph = invert_chain()
    graph["links"][0] = [10, 42, 0, 2, 0, "IMAGE"]
    with pytest.raises(UIConversionError, match="linked to node 42, which is not in the workflow"):
        convert(graph)


def test_a_cycle_is_refused():
    graph = ui(
        [
            node(1, "ImageInvert", inputs=[("image", "IMAGE", 11)], outputs=["IMAGE"]),
            node(2, "ImageInvert", inputs=[("image", "IMAGE", 10)], outputs=["IMAGE"]),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 12)]),
        ],
        [[10, 1, 0, 2, 0, "IMAGE"], [11, 2, 0, 1, 0, "IMAGE"], [12, 2, 0, 3, 0, "IMAGE"]],
    )
    with pytest.raises(UIConversionError, match=r"cycle: .*\(ImageInvert\) -> .*\(ImageInvert\)"):
        convert(graph)


def test_a_reroute_loop_is_refused():
    graph = ui(
        [
            node(20, "Reroute", inputs=[("", "*", 11)], outputs=["*"]),
            node(21, "Reroute", inputs=[("", "*", 10)], outputs=["*"]),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 12)]),
        ],
        [[10, 20, 0, 21, 0, "*"], [11, 21, 0, 20, 0, "*"], [12, 21, 0, 3, 0, "IMAGE"]],
    )
    with pytest.raises(UIConversionError, match="loop of reroute or bypassed nodes"):
        convert(graph)


def test_a_widget_layout_that_does_not_fit_is_refused():
    graph = sampler_graph(["randomize", 42, 25, 6.5, "euler", "karras", 0.9])  # shifted by one
    with pytest.raises(UIConversionError, match=r"node 3 \(KSampler\): the saved value for widget 'seed' does not fit"):
        convert(graph)


def test_extra_or_missing_widget_values_are_reported_not_guessed():
    graph = sampler_graph([42, "randomize", 25, 6.5, "euler", "karras", 0.9, "from-a-newer-version"])
    assert any("beyond this ComfyUI's inputs of KSampler" in w for w in convert(graph).warnings)
    short = sampler_graph([42, "randomize", 25, 6.5, "euler", "karras"])
    conversion = convert(short)
    assert conversion.prompt["3"]["inputs"]["denoise"] == 1.0
    assert any("no saved value for 'denoise'" in w for w in conversion.warnings)


def test_a_subgraph_that_contains_itself_is_refused():
    definition = scale_subgraph()
    definition["nodes"].append(node(9, definition["id"], outputs=["IMAGE"]))
    graph = graph_with_subgraph([])
    graph["definitions"]["subgraphs"] = [definition]
    with pytest.raises(UIConversionError, match="contains itself"):
        convert(graph)


def test_a_workflow_of_notes_only_is_refused():
    with pytest.raises(UIConversionError, match="no node that runs"):
        convert(ui([node(1, "Note", ["hello"])], []))


def test_editor_computed_widgets_are_refused():
    graph = ui(
        [node(1, "Load3D", ["model.glb", "", 1024, 1024], outputs=["IMAGE", "MASK", "STRING"])],
        [],
    )
    with pytest.raises(UIConversionError, match="computed by the ComfyUI editor"):
        convert(graph)


# --- upload and drafting -------------------------------------------------------------------------


def test_upload_validation_converts_and_binds_to_flattened_ids():
    graph = graph_with_subgraph([])
    spec = {
        "spec_version": "1.0",
        "slug": "scaled",
        "name": "Scaled",
        "version": "1.0.0",
        "inputs": [
            {"id": "image", "label": "Image", "type": "image", "bind": [{"node": "1", "input": "image"}]},
            {
                "id": "height",
                "label": "Height",
                "type": "int",
                "min": 16,
                "max": 512,
                "default": 48,
                "bind": [{"node": "7:1", "input": "height"}],
            },
        ],
        "outputs": [{"node": "3", "type": "image"}],
    }
    validated = validate_upload(graph, spec)
    assert validated.converted and set(validated.graph) == {"1", "7:1", "3"}
    assert validated.class_types == {"LoadImage", "ImageScale", "SaveImage"}


def test_upload_validation_reports_a_refused_conversion():
    graph = invert_chain()
    graph["nodes"][1]["type"] = "NoSuchNode"
    with pytest.raises(WorkflowInvalid) as caught:
        validate_upload(graph, {"spec_version": "1.0", "slug": "x", "name": "x", "version": "1", "outputs": []})
    assert any("NoSuchNode" in e.message and e.file == "workflow" for e in caught.value.errors)


def test_the_drafted_spec_of_a_converted_graph_validates():
    ui_graph = sampler_graph([42, "randomize", 25, 6.5, "euler", "karras", 0.9])
    spec = draft_spec(workflow_graph(ui_graph).graph)
    assert {f["id"] for f in spec["inputs"]} >= {"prompt", "negative_prompt", "seed", "steps", "width", "checkpoint"}
    validate_upload(ui_graph, spec)


def test_inputs_exposed_on_a_subgraph_node_become_fields_of_the_draft():
    graph = graph_with_subgraph([])
    graph["nodes"][1]["inputs"][1]["label"] = "Target width"
    loaded = workflow_graph(graph)
    assert loaded.converted and loaded.exposed == [("Target width", [("7:1", "width")])]
    spec = draft_spec(loaded.graph, exposed=loaded.exposed)
    [field] = [f for f in spec["inputs"] if f["label"] == "Target width"]
    assert field["type"] == "int" and field["default"] == 64 and field["bind"] == [{"node": "7:1", "input": "width"}]
    validate_upload(graph, spec)


def test_damaged_files_are_refused_never_crash():
    """Random damage to real templates (values swapped for junk): converted or refused, nothing else."""
    import json
    import random

    from bench.ui_corpus import template_files

    junk = [None, 1, -5, "x", [], {}, [1], [None, None], {"a": 1}, 3.5, True, [1, 2, 3, 4, 5, 6], 10**30]
    rng = random.Random(24)
    names = ("image_z_image_turbo", "3d_hunyuan3d-v2.1", "utility_interpolation_image_upscale", "video_wan_vace_flf2v")
    for path in (p for p in template_files() if p.stem in names):
        base = json.loads(path.read_text(encoding="utf-8"))
        places: list[tuple] = []
        stack: list[tuple[Any, tuple]] = [(base, ())]
        while stack:
            obj, at = stack.pop()
            items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
            for key, value in items:
                places.append((*at, key))
                stack.append((value, (*at, key)))
        for _ in range(40):
            damaged = copy.deepcopy(base)
            for place in rng.sample(places, 3):
                target = damaged
                try:
                    for key in place[:-1]:
                        target = target[key]
                    target[place[-1]] = rng.choice(junk)
                except (KeyError, IndexError, TypeError):
                    pass
            try:
                convert(damaged)
            except UIConversionError as exc:
                assert exc.problems and "damaged and cannot be read" not in str(exc), str(exc)


def test_widgets_saved_by_name_are_taken_by_name():
    graph = invert_chain()
    graph["nodes"][1] = node(
        2,
        "ImageScaleBy",
        {"upscale_method": "nearest-exact", "scale_by": 3, "videopreview": {"hidden": False}},
        inputs=[("image", "IMAGE", 10)],
        outputs=["IMAGE"],
    )
    assert convert(graph).prompt["2"]["inputs"] == {"upscale_method": "nearest-exact", "scale_by": 3, "image": ["1", 0]}


def test_kjnodes_set_and_get_nodes_are_named_wires():
    graph = ui(
        [
            node(1, "LoadImage", ["photo.png", "image"], outputs=["IMAGE", "MASK"]),
            node(20, "SetNode", ["picture"], inputs=[("IMAGE", "IMAGE", 10)], outputs=["*"]),
            node(21, "GetNode", ["picture"], outputs=["IMAGE"]),
            node(22, "Reroute (rgthree)", inputs=[("", "*", 11)], outputs=["IMAGE"]),
            node(3, "SaveImage", ["out"], inputs=[("images", "IMAGE", 12)]),
            node(4, "Fast Groups Bypasser (rgthree)"),
        ],
        [[10, 1, 0, 20, 0, "IMAGE"], [11, 21, 0, 22, 0, "IMAGE"], [12, 22, 0, 3, 0, "IMAGE"]],
    )
    assert set(convert(graph).prompt) == {"1", "3"}
    assert convert(graph).prompt["3"]["inputs"]["images"] == ["1", 0]
    graph["nodes"][2]["widgets_values"] = ["other"]
    with pytest.raises(UIConversionError, match="reads the wire 'other', set by none SetNode"):
        convert(graph)


def test_an_old_group_node_is_refused_with_what_to_do():
    graph = invert_chain()
    graph["nodes"][1]["type"] = "workflow>Invert twice"
    with pytest.raises(UIConversionError, match="is a group node.*Convert to nodes"):
        convert(graph)


def test_exposed_inputs_keep_the_subgraph_names_and_promoted_widgets():
    graph = graph_with_subgraph([])
    graph["definitions"]["subgraphs"][0]["inputs"][1]["name"] = "target_size"
    graph["nodes"][1]["inputs"][1]["name"] = "target_size"
    graph["nodes"][1]["properties"]["proxyWidgets"] = [["1", "height"], ["1", "width"]]
    loaded = workflow_graph(graph)
    assert loaded.exposed == [("target_size", [("7:1", "width")]), ("height", [("7:1", "height")])]
    labels = {f["label"] for f in draft_spec(loaded.graph, exposed=loaded.exposed)["inputs"]}
    assert {"Target size", "Height"} <= labels


def test_a_primitive_shared_by_two_inputs_becomes_one_field():
    """ACE-Step's template: one primitive feeds the seed of the sampler and of the text encoder,
    another (titled "Song Duration") the length of the latent and of the lyrics encoder."""
    import json

    from bench.ui_corpus import template_files

    path = next(p for p in template_files() if p.stem == "audio_ace_step_1_5_split")
    loaded = workflow_graph(json.loads(path.read_text(encoding="utf-8")))
    assert ("seed", [("3", "seed"), ("94", "seed")]) in loaded.exposed
    spec = draft_spec(loaded.graph, exposed=loaded.exposed)
    fields = {f["id"]: f for f in spec["inputs"]}
    assert fields["seed"]["bind"] == [{"node": "3", "input": "seed"}, {"node": "94", "input": "seed"}]
    assert fields["song_duration"]["label"] == "Song Duration"
    assert fields["song_duration"]["bind"] == [{"node": "98", "input": "seconds"}, {"node": "94", "input": "duration"}]
    validate_upload(loaded.graph, spec)


def test_a_class_the_farm_has_but_the_catalogue_lacks_asks_for_a_node_catalogue():
    graph = invert_chain()
    graph["nodes"][1]["type"] = "PixelSorter"
    graph["nodes"][1]["widgets_values"] = ["hue"]
    with pytest.raises(UIConversionError) as caught:
        convert(graph, available=set(object_info()) | {"PixelSorter"})
    assert "convert with that node's catalogue" in caught.value.missing["PixelSorter"]
