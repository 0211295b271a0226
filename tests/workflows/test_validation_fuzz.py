"""validate_upload never crashes: any damage to a good upload is either accepted or reported."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.validation import WorkflowInvalid, validate_upload

from .conftest import example_dirs, load_example

SLUGS = [d.name for d in example_dirs()]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, prefix + (i,))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SLUGS), st.booleans(), st.data())
def test_damaged_uploads_never_crash(slug, in_spec, data):
    graph, spec = load_example(slug)
    target = spec if in_spec else graph
    paths = [p for p in _paths(target) if p]
    path = data.draw(st.sampled_from(paths))
    holder = target
    for key in path[:-1]:
        holder = holder[key]
    if data.draw(st.booleans()) and isinstance(holder, dict):
        del holder[path[-1]]
    else:
        holder[path[-1]] = data.draw(JSON_VALUES)
    try:
        result = validate_upload(json.dumps(graph), json.dumps(spec))
    except WorkflowInvalid as exc:
        assert exc.errors and all(e.file in ("workflow", "spec") and e.message for e in exc.errors)
    else:
        assert result.graph == graph


def test_deeply_nested_json_is_reported():
    deep = "[" * 100000 + "]" * 100000
    try:
        validate_upload(deep, "{}")
    except WorkflowInvalid as exc:
        assert exc.errors[0].file == "workflow"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SLUGS), st.data())
def test_draft_spec_never_crashes_on_damaged_graphs(slug, data):
    from workflows.drafting import draft_spec

    graph, _ = load_example(slug)
    path = data.draw(st.sampled_from([p for p in _paths(graph) if p]))
    holder = graph
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = data.draw(JSON_VALUES)
    assert isinstance(draft_spec(graph), dict)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(SLUGS),
    st.dictionaries(st.sampled_from(["prompt", "seed", "steps", "cfg", "image", "mask", "x"]), JSON_VALUES, max_size=5),
)
def test_validate_inputs_never_crashes(slug, raw):
    from workflows.prompt import InputsInvalid, validate_inputs

    _, spec = load_example(slug)
    try:
        validate_inputs(spec, raw)
    except InputsInvalid as exc:
        assert exc.errors
