"""build_prompt: properties over generated values, and the mask/alpha/seed specifics."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.prompt import PromptBuildError, build_prompt, validate_inputs
from workflows.spec import WorkflowSpec
from workflows.validation import validate_upload

from .conftest import clone, example_dirs, load_example

SLUGS = [d.name for d in example_dirs()]


def value_strategy(field: Any) -> st.SearchStrategy:
    """Valid values of one field, as a user (or the API) could send them."""
    kind = field.type
    if kind == "text":
        top = min(field.max_length or 200, 200)
        low = max(field.min_length, 1 if field.required else 0)
        return st.text(min_size=low, max_size=top).filter(lambda t: t.strip() or not field.required)
    if kind == "int":
        return st.integers(
            field.min if field.min is not None else -(10**6), field.max if field.max is not None else 10**6
        )
    if kind == "float":
        return st.floats(
            field.min if field.min is not None else -1e6,
            field.max if field.max is not None else 1e6,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "bool":
        return st.booleans()
    if kind == "choice" and field.choices_from is not None:  # any file name the farm may have
        return st.sampled_from([field.default, f"sub/other {field.default}"])
    if kind == "choice":
        return st.sampled_from(field.choices)
    if kind == "seed":
        return st.one_of(st.just(-1), st.integers(field.min, field.max))
    return st.text(alphabet="abcdef0123456789", min_size=8, max_size=8)  # upload ids (image, mask, video, audio)


EXTENSIONS = {"image": "png", "mask": "png", "video": "mp4", "audio": "flac"}


@st.composite
def submissions(draw):
    slug = draw(st.sampled_from(SLUGS))
    graph, spec_dict = load_example(slug)
    spec = WorkflowSpec.model_validate(spec_dict)
    raw: dict[str, Any] = {}
    for fld in spec.inputs:
        if fld.required or draw(st.booleans()):
            raw[fld.id] = draw(value_strategy(fld))
    uploads = {
        f.id: f"portal/{draw(st.uuids()).hex}.{EXTENSIONS[f.type]}"
        for f in spec.inputs
        if f.type in EXTENSIONS and f.id in raw
    }
    return graph, spec, raw, uploads


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(submissions(), st.integers(0, 2**32))
def test_build_prompt_changes_only_bound_inputs(case, rng_seed):
    graph, spec, raw, uploads = case
    before = clone(graph)
    values = validate_inputs(spec, raw, rng=random.Random(rng_seed))
    prompt = build_prompt(SimpleNamespace(graph=graph, spec=spec), values, uploads)

    assert graph == before, "the input graph must not be mutated"
    allowed: dict[tuple[str, str], Any] = {}
    alpha = {f.for_image: f.id for f in spec.inputs if f.type == "mask" and f.mode == "alpha"}
    for fld in spec.inputs:
        if fld.id not in values:
            continue
        value = values[fld.id]
        if fld.type == "image":
            value = uploads[alpha[fld.id]] if alpha.get(fld.id) in values else uploads[fld.id]
        elif fld.type in ("video", "audio"):
            value = uploads[fld.id]
        elif fld.type == "mask":
            value = uploads[fld.id]
            for b in fld.bind:
                allowed[(b.node, "channel")] = "red"
        for b in fld.bind:
            allowed[(b.node, b.input)] = value
    assert prompt.keys() == graph.keys()
    for node_id, node in prompt.items():
        assert node["class_type"] == graph[node_id]["class_type"]
        assert node["inputs"].keys() == graph[node_id]["inputs"].keys()
        for name, value in node["inputs"].items():
            if (node_id, name) in allowed:
                assert value == allowed[(node_id, name)]
            else:
                assert value == graph[node_id]["inputs"][name], f"{node_id}.{name} changed"

    # The values respect the spec: cleaning them again changes nothing, seeds are real.
    assert validate_inputs(spec, values) == values
    for fld in spec.inputs:
        if fld.type == "seed":
            assert fld.min <= values[fld.id] <= fld.max


@settings(max_examples=40, deadline=None, database=None)
@given(st.sampled_from(SLUGS), st.integers(0, 2**32))
def test_build_prompt_is_deterministic_and_valid(slug, rng_seed):
    graph, spec = load_example(slug)
    raw = {"prompt": "a red fox"} if any(f["id"] == "prompt" for f in spec["inputs"]) else {}
    uploads = {f["id"]: f"x/{f['id']}.{EXTENSIONS[f['type']]}" for f in spec["inputs"] if f["type"] in EXTENSIONS}
    raw.update(dict.fromkeys(uploads, "u1"))
    values = validate_inputs(spec, raw, rng=random.Random(rng_seed))
    wf = SimpleNamespace(graph=graph, spec=spec)
    first, second = build_prompt(wf, values, uploads), build_prompt(wf, values, uploads)
    assert first == second
    validate_upload(first, spec)


def test_file_mask_sets_name_and_red_channel(inpaint):
    graph, spec = inpaint
    graph["11"]["inputs"]["channel"] = "alpha"
    values = validate_inputs(spec, {"image": "u1", "mask": "u2", "prompt": "a vase", "seed": 7})
    prompt = build_prompt(SimpleNamespace(graph=graph, spec=spec), values, {"image": "p/img.png", "mask": "p/mask.png"})
    assert prompt["10"]["inputs"]["image"] == "p/img.png"
    assert prompt["11"]["inputs"] == {"image": "p/mask.png", "channel": "red"}
    assert prompt["3"]["inputs"]["seed"] == 7
    assert graph["11"]["inputs"]["channel"] == "alpha"


def test_alpha_mask_replaces_the_image_with_the_merged_file():
    graph, spec = load_example("mask-composite-alpha")
    values = validate_inputs(spec, {"image": "u1", "mask": "u2"})
    prompt = build_prompt(
        SimpleNamespace(graph=graph, spec=spec), values, {"image": "p/img.png", "mask": "clipspace/merged.png"}
    )
    assert prompt["1"]["inputs"]["image"] == "clipspace/merged.png"
    assert prompt["3"]["inputs"]["mask"] == ["1", 1]


def test_optional_alpha_mask_missing_uses_plain_image():
    graph, spec = load_example("mask-composite-alpha")
    spec["inputs"][1]["required"] = False
    values = validate_inputs(spec, {"image": "u1"})
    prompt = build_prompt(SimpleNamespace(graph=graph, spec=spec), values, {"image": "p/img.png"})
    assert prompt["1"]["inputs"]["image"] == "p/img.png"


def test_missing_upload_name_is_an_error(inpaint):
    graph, spec = inpaint
    values = validate_inputs(spec, {"image": "u1", "mask": "u2", "prompt": "x"})
    with pytest.raises(PromptBuildError, match="mask field 'mask' has no uploaded file name"):
        build_prompt(SimpleNamespace(graph=graph, spec=spec), values, {"image": "p/img.png"})


def test_seed_left_at_minus_one_is_resolved_in_build(txt2img):
    graph, spec = txt2img
    values = validate_inputs(spec, {"prompt": "x"})
    values["seed"] = -1
    prompt = build_prompt(SimpleNamespace(graph=graph, spec=spec), values, {}, rng=random.Random(3))
    assert 0 <= prompt["3"]["inputs"]["seed"] <= 2**53 - 1


def test_one_field_feeds_several_nodes():
    graph, spec = load_example("sdxl-base-refiner")
    values = validate_inputs(spec, {"prompt": "castle", "seed": 99, "refiner_start": 18})
    prompt = build_prompt(SimpleNamespace(graph=graph, spec=spec), values, {})
    assert prompt["6"]["inputs"]["text"] == prompt["15"]["inputs"]["text"] == "castle"
    assert prompt["10"]["inputs"]["noise_seed"] == prompt["11"]["inputs"]["noise_seed"] == 99
    assert prompt["10"]["inputs"]["end_at_step"] == prompt["11"]["inputs"]["start_at_step"] == 18


def test_accepts_a_validated_workflow_object(txt2img):
    result = validate_upload(*txt2img)
    values = validate_inputs(result.spec, {"prompt": "x", "seed": 1})
    assert build_prompt(result, values, {})["3"]["inputs"]["seed"] == 1
