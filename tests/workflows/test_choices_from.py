"""Spec 1.1 model fields (choices_from): upload rules, the bundled workflows, the form schema."""

from __future__ import annotations

import pytest

from testcomfy.catalog import MODEL_INPUTS
from workflows.prompt import InputsInvalid, validate_inputs
from workflows.spec import model_binds
from workflows.ui_schema import ui_schema
from workflows.validation import WorkflowInvalid, validate_upload

from .conftest import clone, english_only, example_dirs, load_example

CHECKPOINT = 9  # inputs[9] of sd15-txt2img: the checkpoint field


def refused(graph, spec, **kwargs) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        validate_upload(graph, spec, **kwargs)
    return [str(e) for e in caught.value.errors]


def test_every_bundled_model_input_offers_the_farms_files():
    """No bundled workflow names a fixed model file: each model input of its graph (as the test
    ComfyUI knows them) is bound by a choices_from field of that folder, and its spec is 1.1 or later."""
    seen = 0
    for folder in example_dirs():
        graph, spec = load_example(folder.name)
        validated = validate_upload(graph, spec)
        bound = model_binds(validated.spec)
        for node_id, node in graph.items():
            for name in node["inputs"]:
                wanted = MODEL_INPUTS.get((node["class_type"], name))
                if wanted is not None:
                    assert bound.get((node_id, name)) == wanted, (folder.name, node_id, name)
                    seen += 1
        if bound:
            assert validated.spec.spec_version in ("1.1", "1.2")
    assert seen >= 18


def test_unknown_folder_is_refused_naming_the_field(txt2img):
    graph, spec = clone(txt2img)
    spec["inputs"][CHECKPOINT]["choices_from"] = "chekpoints"
    [error] = refused(graph, spec)
    assert "inputs[9].choices_from" in error and "'checkpoint'" in error and "unknown model folder" in error
    # A folder a node of the farm lists (a custom node pack's) is fine.
    validate_upload(graph, spec, model_folders={"chekpoints"})


def test_choices_from_on_a_non_choice_field_is_refused_naming_the_field(txt2img):
    graph, spec = clone(txt2img)
    spec["inputs"][5]["choices_from"] = "checkpoints"  # steps: an int field
    [error] = refused(graph, spec)
    assert "field 'steps'" in error and "choices_from is allowed only on a choice field" in error


def test_choices_from_must_bind_a_model_file_input_and_needs_spec_1_1(txt2img):
    graph, spec = clone(txt2img)
    sampler = next(f for f in spec["inputs"] if f["id"] == "sampler")
    del sampler["choices"]
    sampler["choices_from"] = "checkpoints"
    del sampler["default"]
    errors = refused(graph, spec)
    assert any("'sampler'" in e and "does not take a file" in e for e in errors)
    graph, spec = clone(txt2img)
    spec["spec_version"] = "1.0"
    assert any("choices_from needs spec_version 1.1" in e for e in refused(graph, spec))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"choices": ["a.ckpt"]}, "either choices or choices_from"),
        ({"match": "sdxl/*", "default": "v1.ckpt"}, "does not match"),
    ],
)
def test_choices_from_field_rules(txt2img, change, message):
    graph, spec = clone(txt2img)
    spec["inputs"][CHECKPOINT].update(change)
    assert any(message in e for e in refused(graph, spec))


def test_a_1_0_spec_still_validates(txt2img):
    graph, spec = txt2img[0], english_only(txt2img[1])
    fld = spec["inputs"][CHECKPOINT]
    del fld["choices_from"]
    fld["choices"] = ["v1-5-pruned-emaonly.safetensors"]
    spec["spec_version"] = "1.0"
    assert validate_upload(graph, spec).spec.spec_version == "1.0"


def test_ui_schema_lists_the_farms_files_and_inputs_check_the_glob(txt2img):
    _graph, spec = clone(txt2img)
    spec["inputs"][CHECKPOINT].update({"match": "sd*", "default": "sd15.safetensors"})
    schema = ui_schema(spec, {"checkpoint": [("sd15.safetensors", 2), ("sdxl/base.safetensors", 0)]})
    field = next(f for f in schema["fields"] if f["id"] == "checkpoint")
    assert field["choices"] == ["sd15.safetensors", "sdxl/base.safetensors"]
    assert field["models"] == [
        {"name": "sd15.safetensors", "nodes_online": 2},
        {"name": "sdxl/base.safetensors", "nodes_online": 0},
    ]
    assert field["default"] == "sd15.safetensors" and field["choices_from"] == "checkpoints"
    empty = next(f for f in ui_schema(spec)["fields"] if f["id"] == "checkpoint")
    assert empty["choices"] == [] and empty["default"] is None
    assert validate_inputs(spec, {"prompt": "x", "checkpoint": "sdxl/base.safetensors"})["checkpoint"]
    with pytest.raises(InputsInvalid) as caught:
        validate_inputs(spec, {"prompt": "x", "checkpoint": "v1-5.safetensors"})
    assert "matching 'sd*'" in caught.value.errors["checkpoint"]
