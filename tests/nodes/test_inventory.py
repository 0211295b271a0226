"""Model inventory, model-file inputs and routing rules (nodes.inventory): pure, no database."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import inventory
from nodes.inventory import NodeView

RECORDED = Path(__file__).resolve().parents[2] / "nodes" / "comfy" / "object_info.json"
INVENTORY = {
    "checkpoints": ["sdxl/juggernaut.safetensors", "v1-5-pruned-emaonly.safetensors"],
    "loras": ["detail.safetensors"],
    "upscale_models": ["RealESRGAN_x4plus.pth"],
    "vae": ["ae.safetensors"],
    "controlnet": [],
}


def live_object_info(inv: dict) -> dict:
    """The recorded /object_info with the node's files filled in, as a real server lists them:
    the older list form for CheckpointLoaderSimple/LoraLoader/VAELoader, the COMBO form for
    UpscaleModelLoader (both recorded in ComfyUI 0.33)."""
    info = copy.deepcopy(json.loads(RECORDED.read_text()))
    required = lambda cls: info[cls]["input"]["required"]  # noqa: E731
    assert required("UpscaleModelLoader")["model_name"][0] == "COMBO"  # the recorded forms
    assert isinstance(required("CheckpointLoaderSimple")["ckpt_name"][0], list)
    required("CheckpointLoaderSimple")["ckpt_name"][0] = list(inv.get("checkpoints", []))
    required("LoraLoader")["lora_name"][0] = list(inv.get("loras", []))
    required("VAELoader")["vae_name"][0] = [*inv.get("vae", []), "pixel_space"]
    required("UpscaleModelLoader")["model_name"][1]["options"] = list(inv.get("upscale_models", []))
    return info


def test_model_inputs_read_both_object_info_forms():
    found = inventory.model_inputs(live_object_info(INVENTORY), INVENTORY)
    assert found["CheckpointLoaderSimple"]["ckpt_name"] == {"folder": "checkpoints", "builtin": []}
    assert found["LoraLoader"]["lora_name"]["folder"] == "loras"
    assert found["UpscaleModelLoader"]["model_name"]["folder"] == "upscale_models"  # the COMBO form
    # Built-in entries next to the files are not files.
    assert found["VAELoader"]["vae_name"] == {"folder": "vae", "builtin": ["pixel_space"]}
    # Fixed vocabularies are not model inputs.
    assert "sampler_name" not in found.get("KSampler", {})
    assert "weight_dtype" not in found.get("UNETLoader", {})


def test_an_empty_folder_is_learnt_from_another_node_or_the_spec():
    empty = {"checkpoints": [], "loras": ["detail.safetensors"]}
    alone = inventory.model_inputs(live_object_info(empty), empty)
    assert "CheckpointLoaderSimple" not in alone
    farm = inventory.merge_model_inputs([alone, inventory.model_inputs(live_object_info(INVENTORY), INVENTORY)])
    assert farm["CheckpointLoaderSimple"]["ckpt_name"]["folder"] == "checkpoints"
    prompt = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}}
    assert inventory.prompt_needs(prompt, alone) == []
    declared = inventory.prompt_needs(prompt, alone, {("4", "ckpt_name"): "checkpoints"})
    assert [n.key for n in declared] == ["checkpoints/x.safetensors"]


def test_models_answers_make_an_inventory():
    folders = ["checkpoints", "custom_nodes", "loras", "configs", 7, "bad/name"]
    answers = {
        "checkpoints": ["v1-5-pruned-emaonly.safetensors", "sdxl/juggernaut.safetensors", 3],
        "custom_nodes": ["ComfyUI-Manager/__init__.py"],
        "loras": [],
        "configs": "not a list",
    }
    assert inventory.clean_inventory(folders, answers) == {
        "checkpoints": ["sdxl/juggernaut.safetensors", "v1-5-pruned-emaonly.safetensors"],
        "loras": [],
    }
    assert inventory.inventory_keys({"loras": ["a", "b/c"]}) == {"loras/a", "loras/b/c"}
    assert inventory.split_key("checkpoints/sdxl/j.safetensors") == ("checkpoints", "sdxl/j.safetensors")


def test_prompt_needs_reads_the_built_prompt_generically():
    farm = inventory.model_inputs(live_object_info(INVENTORY), INVENTORY)
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernaut.safetensors"}},
        "5": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "model": ["4", 0]}},
        "6": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},  # built in: no file
        "7": {"class_type": "KSampler", "inputs": {"sampler_name": "euler", "model": ["5", 0]}},
    }
    needs = inventory.prompt_needs(prompt, farm)
    assert [(n.key, n.node, n.input) for n in needs] == [
        ("checkpoints/sdxl/juggernaut.safetensors", "4", "ckpt_name"),
        ("loras/detail.safetensors", "5", "lora_name"),
    ]


def _view(pk, *, online=True, classes=("A",), models=(), free=True, held=()):
    return NodeView(pk, f"n{pk}", online, frozenset(classes), frozenset(models), free, 1, frozenset(held))


@pytest.mark.parametrize(
    "nodes,expected",
    [
        ([], (inventory.NO_NODE_ONLINE, [])),
        ([_view(1, online=False, models=["c/x"])], (inventory.NO_NODE_ONLINE, [])),
        ([_view(1, classes=["B"], models=["c/x"])], (inventory.MISSING_CLASSES, ["A"])),
        ([_view(1, models=["c/y"]), _view(2, online=False, models=["c/x"])], (inventory.MISSING_MODEL, ["c/x"])),
        ([_view(1, models=["c/x"], free=False), _view(2, models=["c/y"])], (inventory.ALL_BUSY, [])),
        ([_view(1, models=["c/x"]), _view(2, models=["c/y"], free=False)], ("", [])),
    ],
)
def test_waiting_reason_for_each_case(nodes, expected):
    assert inventory.waiting_reason(nodes, ["A"], ["c/x"]) == expected


FILES = [f"checkpoints/m{i}.safetensors" for i in range(5)]


@st.composite
def farms(draw):
    count = draw(st.integers(0, 6))
    return [
        _view(
            pk,
            online=draw(st.booleans()),
            classes=draw(st.sets(st.sampled_from(["A", "B"]), min_size=1)),
            models=draw(st.sets(st.sampled_from(FILES))),
            free=draw(st.booleans()),
        )
        for pk in range(1, count + 1)
    ]


@settings(max_examples=200, deadline=None)
@given(farms(), st.sets(st.sampled_from(["A", "B"]), min_size=1), st.sets(st.sampled_from(FILES), max_size=2))
def test_able_nodes_have_every_file_and_reasons_agree(nodes, classes, files):
    able = inventory.able(nodes, classes, files)
    assert all(files <= n.models and classes <= n.class_types for n in able)
    assert {n.pk for n in able} == {n.pk for n in nodes if n.has(classes, files)}
    code, missing = inventory.waiting_reason(nodes, classes, files)
    if code == "":  # "only waits its turn" exactly when an able online node is free
        assert any(n.online and n.free for n in able)
    else:
        assert not any(n.online and n.free for n in able)
    if code == inventory.MISSING_MODEL:
        assert missing and set(missing) <= files


def test_files_a_node_refused_are_found_in_its_answer():
    """The recorded 400 shape: value_not_in_list with extra_info.received_value."""
    node_errors = {
        "4": {
            "errors": [
                {
                    "type": "value_not_in_list",
                    "message": "Value not in list",
                    "details": "ckpt_name: 'gone.safetensors' not in ['a.safetensors']",
                    "extra_info": {"input_name": "ckpt_name", "received_value": "gone.safetensors"},
                }
            ],
            "class_type": "CheckpointLoaderSimple",
        },
        "3": {"errors": [{"type": "value_not_in_list", "extra_info": {"received_value": "fastest"}}]},
    }
    wanted = ["checkpoints/gone.safetensors", "loras/kept.safetensors"]
    assert inventory.refused_files(node_errors, wanted) == ["checkpoints/gone.safetensors"]
    assert inventory.refused_files({}, wanted) == []
