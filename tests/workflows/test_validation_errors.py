"""Bad uploads: each one must be refused with its own message, naming its file and place."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from workflows.validation import WorkflowInvalid, detect_ui_format, graph_class_types, validate_upload

from .conftest import clone, load_example

Pair = tuple[Any, Any]


def _txt() -> Pair:
    return load_example("sd15-txt2img")


def _inp() -> Pair:
    return load_example("sd15-inpaint")


def _alpha() -> Pair:
    return load_example("mask-composite-alpha")


def edit(base: Callable[[], Pair], fn: Callable[[dict, dict], Any]) -> Callable[[], Pair]:
    """Return a case builder: load an example, let ``fn`` break it, return (workflow, spec)."""

    def build() -> Pair:
        graph, spec = base()
        fn(graph, spec)  # edits in place; its return value (a pop, a None) does not matter
        return graph, spec

    return build


def _set(obj: dict, path: list, value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


UI_FORMAT = {
    "last_node_id": 9,
    "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [1, "randomize"]}],
    "links": [],
}

# (case id, builder, expected file, expected path, message fragment)
CASES: list[tuple[str, Callable[[], Pair], str, str, str]] = [
    ("workflow-not-json", lambda: (b'{"3": {"class_type": "KSampler",,}', _txt()[1]), "workflow", "", "not valid JSON"),
    ("workflow-json-linecol", lambda: ('{\n  "3": oops\n}', _txt()[1]), "workflow", "", "line 2, column 8"),
    ("workflow-not-utf8", lambda: (b"\xff\xfe{}", _txt()[1]), "workflow", "", "not UTF-8"),
    ("workflow-ui-format", lambda: (json.dumps(UI_FORMAT), _txt()[1]), "workflow", "", "UI-format workflow"),
    ("workflow-ui-format-hint", lambda: (UI_FORMAT, _txt()[1]), "workflow", "", "Export (API)"),
    (
        "workflow-array",
        lambda: ("[1, 2]", _txt()[1]),
        "workflow",
        "",
        "must be a JSON object of nodes, got a JSON array",
    ),
    ("workflow-empty-object", lambda: ("{}", _txt()[1]), "workflow", "", "the graph is empty"),
    ("workflow-empty-file", lambda: (b"  ", _txt()[1]), "workflow", "", "is empty"),
    ("workflow-is-a-spec", lambda: (_txt()[1], _txt()[1]), "workflow", "", "were the two files swapped"),
    ("node-no-class-type", edit(_txt, lambda g, s: g["8"].pop("class_type")), "workflow", "8", "has no class_type"),
    ("node-no-inputs", edit(_txt, lambda g, s: g["8"].pop("inputs")), "workflow", "8", "has no inputs object"),
    ("node-not-object", edit(_txt, lambda g, s: _set(g, ["8"], "VAEDecode")), "workflow", "8", "must be an object"),
    (
        "link-missing-node",
        edit(_txt, lambda g, s: _set(g, ["8", "inputs", "samples"], ["42", 0])),
        "workflow",
        "8.inputs.samples",
        "links to node '42', which is not in the workflow",
    ),
    (
        "link-bad-output-index",
        edit(_txt, lambda g, s: _set(g, ["8", "inputs", "vae"], ["4", 5])),
        "workflow",
        "8.inputs.vae",
        "which has only 3 output(s)",
    ),
    (
        "link-int-source",
        edit(_txt, lambda g, s: _set(g, ["8", "inputs", "vae"], [4, 2])),
        "workflow",
        "8.inputs.vae",
        "must be a node id string",
    ),
    (
        "link-wrong-type",
        edit(_txt, lambda g, s: _set(g, ["8", "inputs", "vae"], ["4", 1])),
        "workflow",
        "8.inputs.vae",
        "expects VAE but output 1",
    ),
    (
        "list-not-link",
        edit(_txt, lambda g, s: _set(g, ["8", "inputs", "vae"], ["4", 2, 0])),
        "workflow",
        "8.inputs.vae",
        "a list must be a link",
    ),
    (
        "graph-bad-combo",
        edit(_txt, lambda g, s: _set(g, ["3", "inputs", "sampler_name"], "fastest")),
        "workflow",
        "3.inputs.sampler_name",
        "'fastest' is not one of",
    ),
    (
        "graph-out-of-range",
        edit(_txt, lambda g, s: _set(g, ["5", "inputs", "width"], 20000)),
        "workflow",
        "5.inputs.width",
        "above the maximum 16384",
    ),
    (
        "graph-not-a-number",
        edit(_txt, lambda g, s: _set(g, ["5", "inputs", "width"], "wide")),
        "workflow",
        "5.inputs.width",
        "expects a whole number",
    ),
    (
        "graph-missing-required",
        edit(_txt, lambda g, s: g["3"]["inputs"].pop("cfg")),
        "workflow",
        "3.inputs",
        "misses required input 'cfg'",
    ),
    (
        "graph-bool-string",
        edit(_inp, lambda g, s: _set(g, ["12", "inputs", "grow_mask_by"], True)),
        "workflow",
        "12.inputs.grow_mask_by",
        "expects a number",
    ),
    (
        "graph-cycle",
        edit(_txt, lambda g, s: _set(g, ["3", "inputs", "latent_image"], ["8", 0])),
        "workflow",
        "3",
        "the graph has a cycle: 3 -> 8 -> 3",
    ),
    ("spec-not-json", lambda: (_txt()[0], "{nope"), "spec", "", "not valid JSON"),
    ("spec-not-object", lambda: (_txt()[0], "[]"), "spec", "", "must be a JSON object"),
    ("spec-missing-key", edit(_txt, lambda g, s: s.pop("outputs")), "spec", "outputs", "is required"),
    ("spec-extra-key", edit(_txt, lambda g, s: _set(s, ["colour"], "red")), "spec", "colour", "unknown key 'colour'"),
    ("spec-bad-slug", edit(_txt, lambda g, s: _set(s, ["slug"], "My Workflow")), "spec", "slug", "lowercase letters"),
    ("spec-bad-version", edit(_txt, lambda g, s: _set(s, ["spec_version"], "2.0")), "spec", "spec_version", "'1.0'"),
    (
        "spec-unknown-type",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "type"], "number")),
        "spec",
        "inputs[5].type",
        "unknown field type 'number'",
    ),
    (
        "spec-field-extra-key",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "maximum"], 3)),
        "spec",
        "inputs[5].maximum",
        "unknown key 'maximum'",
    ),
    (
        "spec-default-above-max",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "default"], 500)),
        "spec",
        "inputs[5]",
        "default 500 is above max 100",
    ),
    (
        "spec-min-above-max",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "min"], 200)),
        "spec",
        "inputs[5]",
        "min 200 is greater than max 100",
    ),
    (
        "spec-step-zero",
        edit(_txt, lambda g, s: _set(s, ["inputs", 6, "step"], 0)),
        "spec",
        "inputs[6]",
        "step must be greater than 0",
    ),
    (
        "spec-default-not-in-choices",
        edit(_txt, lambda g, s: _set(s, ["inputs", 7, "default"], "turbo")),
        "spec",
        "inputs[7]",
        "default 'turbo' is not one of the choices",
    ),
    (
        "spec-empty-choices",
        edit(_txt, lambda g, s: _set(s, ["inputs", 7, "choices"], [])),
        "spec",
        "inputs[7]",
        "choices must list at least one value (or use choices_from)",
    ),
    (
        "spec-bad-field-id",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "id"], "2steps")),
        "spec",
        "inputs[5].id",
        "letters, digits and _",
    ),
    (
        "spec-duplicate-id",
        edit(_txt, lambda g, s: _set(s, ["inputs", 6, "id"], "steps")),
        "spec",
        "inputs[6].id",
        "duplicate field id 'steps'",
    ),
    (
        "spec-no-bind",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "bind"], [])),
        "spec",
        "inputs[5]",
        "bind must name at least one node input",
    ),
    (
        "bind-missing-node",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "bind", 0, "node"], "99")),
        "spec",
        "inputs[5].bind[0].node",
        "node '99' is not in the workflow",
    ),
    (
        "bind-unknown-input",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "bind", 0, "input"], "stepz")),
        "spec",
        "inputs[5].bind[0].input",
        "KSampler (node '3') has no input 'stepz'",
    ),
    (
        "bind-to-link",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "bind", 0, "input"], "model")),
        "spec",
        "inputs[5].bind[0].input",
        "is connected to node '4'",
    ),
    (
        "bind-twice",
        edit(_txt, lambda g, s: _set(s, ["inputs", 6, "bind"], [{"node": "3", "input": "steps"}])),
        "spec",
        "inputs[6].bind[0]",
        "already set by field 'steps'",
    ),
    (
        "bind-text-to-int",
        edit(_txt, lambda g, s: _set(s, ["inputs", 0, "bind", 0], {"node": "3", "input": "steps"})),
        "spec",
        "inputs[0].bind[0].input",
        "a text field cannot set KSampler.steps, which takes INT",
    ),
    (
        "bind-float-to-int",
        edit(
            _txt,
            lambda g, s: (
                _set(s, ["inputs", 6, "bind", 0, "node"], "5")
                or _set(s, ["inputs", 6, "bind", 0, "input"], "batch_size")
            ),
        ),
        "spec",
        "inputs[6].bind[0].input",
        "a float field cannot set EmptyLatentImage.batch_size",
    ),
    (
        "bind-image-to-ksampler",
        edit(_inp, lambda g, s: _set(s, ["inputs", 0, "bind", 0], {"node": "3", "input": "seed"})),
        "spec",
        "inputs[0].bind[0].input",
        "an image field must bind to a LoadImage node's 'image' input",
    ),
    (
        "bind-mask-to-loadimage",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "bind", 0], {"node": "10", "input": "image"})),
        "spec",
        "inputs[1].bind[0]",
        "already set by field 'image'",
    ),
    (
        "bind-mask-to-wrong-node",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "bind", 0], {"node": "12", "input": "grow_mask_by"})),
        "spec",
        "inputs[1].bind[0].input",
        "LoadImageMask (file mode)",
    ),
    (
        "bind-int-to-loadimage",
        edit(
            _txt,
            lambda g, s: (
                _set(g, ["30"], {"class_type": "LoadImage", "inputs": {"image": "a.png"}})
                or _set(s, ["inputs", 5, "bind", 0], {"node": "30", "input": "image"})
            ),
        ),
        "spec",
        "inputs[5].bind[0].input",
        "takes an uploaded file",
    ),
    (
        "choice-not-in-combo",
        edit(_txt, lambda g, s: s["inputs"][7]["choices"].append("warp_drive")),
        "spec",
        "inputs[7].choices[10]",
        "'warp_drive' is not allowed by KSampler.sampler_name",
    ),
    (
        "min-below-catalog",
        edit(_txt, lambda g, s: _set(s, ["inputs", 5, "min"], 0)),
        "spec",
        "inputs[5].min",
        "below KSampler.steps's minimum 1",
    ),
    (
        "max-above-catalog",
        edit(_txt, lambda g, s: _set(s, ["inputs", 2, "max"], 40000)),
        "spec",
        "inputs[2].max",
        "above EmptyLatentImage.width's maximum 16384",
    ),
    (
        "seed-max-too-big",
        edit(_txt, lambda g, s: _set(s, ["inputs", 4, "max"], 2**64)),
        "spec",
        "inputs[4].max",
        "less than or equal to 18446744073709551615",
    ),
    (
        "output-missing-node",
        edit(_txt, lambda g, s: _set(s, ["outputs", 0, "node"], "77")),
        "spec",
        "outputs[0].node",
        "output node '77' is not in the workflow",
    ),
    (
        "output-not-output-node",
        edit(_txt, lambda g, s: _set(s, ["outputs", 0, "node"], "8")),
        "spec",
        "outputs[0].node",
        "(VAEDecode) is not an output node",
    ),
    (
        "for-image-missing",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "for_image"], "photo")),
        "spec",
        "inputs[1].for_image",
        "no field has id 'photo'",
    ),
    (
        "for-image-not-image",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "for_image"], "prompt")),
        "spec",
        "inputs[1].for_image",
        "is a text field, not an image",
    ),
    (
        "alpha-mask-with-bind",
        edit(_alpha, lambda g, s: _set(s, ["inputs", 1, "bind"], [{"node": "1", "input": "image"}])),
        "spec",
        "inputs[1]",
        "an alpha-mode mask has no bind of its own",
    ),
    (
        "alpha-mask-image-not-loadimage",
        edit(_alpha, lambda g, s: _set(g, ["1", "class_type"], "LoadImageCustom")),
        "spec",
        "inputs[1].mode",
        "needs its image 'image' bound to LoadImage nodes only",
    ),
    (
        "mask-bad-filter",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "filter"], "lanczos")),
        "spec",
        "inputs[1].filter",
        "'nearest' or 'bilinear'",
    ),
    (
        "mask-negative-grow",
        edit(_inp, lambda g, s: _set(s, ["inputs", 1, "grow"], -3)),
        "spec",
        "inputs[1].grow",
        "greater than or equal to 0",
    ),
]


@pytest.mark.parametrize(("builder", "file", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_upload_is_refused_with_its_own_message(builder, file, path, fragment):
    workflow, spec = builder()
    with pytest.raises(WorkflowInvalid) as info:
        validate_upload(workflow, spec)
    errors = info.value.errors
    matching = [e for e in errors if e.file == file and e.path == path and fragment in e.message]
    assert matching, f"expected {file}:{path} ~ {fragment!r}, got:\n" + "\n".join(map(str, errors))


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


def test_all_errors_are_reported_at_once(txt2img):
    graph, spec = clone(txt2img)
    graph["3"]["inputs"]["sampler_name"] = "fastest"
    spec["inputs"][5]["bind"][0]["node"] = "99"
    spec["outputs"][0]["node"] = "8"
    with pytest.raises(WorkflowInvalid) as info:
        validate_upload(graph, spec)
    assert len(info.value.errors) == 3
    assert str(info.value).count("\n") == 2


def test_unknown_class_type_is_a_warning_not_an_error(txt2img):
    graph, spec = clone(txt2img)
    graph["20"] = {"class_type": "MyCustomUpscaler", "inputs": {"image": ["8", 0], "factor": 2}}
    graph["21"] = {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "x"}}
    spec["inputs"].append(
        {"id": "factor", "label": "Factor", "type": "int", "bind": [{"node": "20", "input": "factor"}]}
    )
    result = validate_upload(graph, spec)
    assert "MyCustomUpscaler" in result.class_types
    assert any("MyCustomUpscaler" in w.message and w.file == "workflow" for w in result.warning_details)
    assert any(line.startswith("workflow: 20: ") for line in result.warnings)
    json.dumps(result.warnings)  # stored as JSON by the model layer


def test_unknown_class_checks_bind_against_graph_inputs(txt2img):
    graph, spec = clone(txt2img)
    graph["20"] = {"class_type": "MyCustomNode", "inputs": {"factor": 2}}
    spec["inputs"].append({"id": "factor", "label": "Factor", "type": "int", "bind": [{"node": "20", "input": "nope"}]})
    with pytest.raises(WorkflowInvalid) as info:
        validate_upload(graph, spec)
    assert any(
        e.path == "inputs[10].bind[0].input" and "(MyCustomNode) has no input 'nope' in the workflow" in e.message
        for e in info.value.errors
    )


def test_model_file_combos_accept_any_name(txt2img):
    graph, spec = clone(txt2img)
    graph["4"]["inputs"]["ckpt_name"] = "anything-at-all.safetensors"
    del spec["inputs"][9]["choices_from"]  # a fixed list of files, as in spec 1.0
    spec["inputs"][9]["choices"] = ["anything-at-all.safetensors", "other.ckpt"]
    spec["inputs"][9]["default"] = "other.ckpt"
    validate_upload(graph, spec)


def test_accepts_bytes_str_and_dict(txt2img):
    graph, spec = txt2img
    for wrap in (lambda o: json.dumps(o).encode(), json.dumps, clone):
        result = validate_upload(wrap(graph), wrap(spec))
        assert result.graph == graph
        assert result.spec.slug == "sd15-txt2img"
        assert result.spec_dict["slug"] == "sd15-txt2img"
        assert result.requires_mask is False
        assert result.warnings == []


def test_input_objects_are_not_mutated(txt2img):
    graph, spec = txt2img
    before = clone((graph, spec))
    result = validate_upload(graph, spec)
    result.graph["3"]["inputs"]["steps"] = 99
    assert (graph, spec) == before


def test_detect_ui_format_and_class_types(txt2img):
    assert detect_ui_format(UI_FORMAT)
    assert not detect_ui_format(txt2img[0])
    assert not detect_ui_format([])
    assert graph_class_types(txt2img[0]) == {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "KSampler",
        "VAEDecode",
        "SaveImage",
        "EmptyLatentImage",
    }


def test_errors_serialize(txt2img):
    graph, spec = clone(txt2img)
    spec["outputs"][0]["node"] = "77"
    with pytest.raises(WorkflowInvalid) as info:
        validate_upload(graph, spec)
    assert info.value.errors[0].as_dict() == {
        "file": "spec",
        "path": "outputs[0].node",
        "message": "output node '77' is not in the workflow",
    }


def test_optional_number_without_catalog_limits_warns(txt2img):
    graph, spec = clone(txt2img)
    del spec["inputs"][5]["min"]
    del spec["inputs"][5]["widget"]
    result = validate_upload(graph, spec)
    assert any(w.path == "inputs[5].min" for w in result.warning_details)


def test_alpha_mask_without_mask_consumer_warns():
    graph, spec = load_example("mask-composite-alpha")
    graph["3"]["inputs"]["mask"] = ["7", 0]
    graph["7"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
    result = validate_upload(graph, spec)
    assert any("no effect" in w for w in result.warnings)
