"""The spec models themselves and the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from workflows.spec import SEED_MAX, WorkflowSpec, spec_json_schema

REPO = Path(__file__).resolve().parents[2]


def base(**inputs_and_more):
    spec = {
        "spec_version": "1.0",
        "slug": "t",
        "name": "T",
        "version": "1.0.0",
        "outputs": [{"node": "9"}],
        "inputs": [],
    }
    spec.update(inputs_and_more)
    return spec


def test_committed_schema_is_current():
    committed = json.loads((REPO / "docs/workflow-spec.schema.json").read_text(encoding="utf-8"))
    assert committed == spec_json_schema(), "run: python -m workflows.spec > docs/workflow-spec.schema.json"


def test_schema_has_every_field_type():
    text = json.dumps(spec_json_schema())
    for name in (
        "TextField",
        "IntField",
        "FloatField",
        "BoolField",
        "ChoiceField",
        "SeedField",
        "ImageField",
        "MaskField",
    ):
        assert name in text


def test_defaults_of_the_models():
    spec = WorkflowSpec.model_validate(
        base(
            inputs=[
                {"id": "s", "label": "S", "type": "seed", "bind": [{"node": "1", "input": "seed"}]},
                {"id": "i", "label": "I", "type": "image", "bind": [{"node": "2", "input": "image"}]},
                {"id": "m", "label": "M", "type": "mask", "for_image": "i", "bind": [{"node": "3", "input": "image"}]},
            ]
        )
    )
    seed, image, mask = spec.inputs
    assert (seed.default, seed.min, seed.max) == (-1, 0, SEED_MAX)
    assert image.required and mask.required and mask.mode == "file" and not mask.invert
    assert spec.requires_mask and spec.category == "general"


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "n", "label": "N", "type": "int", "default": True, "bind": [{"node": "1", "input": "x"}]},
        {"id": "n", "label": "N", "type": "int", "default": "3", "bind": [{"node": "1", "input": "x"}]},
        {"id": "n", "label": "N", "type": "int", "widget": "slider", "bind": [{"node": "1", "input": "x"}]},
        {
            "id": "n",
            "label": "N",
            "type": "text",
            "min_length": 5,
            "max_length": 2,
            "bind": [{"node": "1", "input": "x"}],
        },
        {"id": "n", "label": "N", "type": "choice", "choices": ["a", "a"], "bind": [{"node": "1", "input": "x"}]},
        {"id": "n", "label": "N", "type": "seed", "default": 5, "min": 10, "bind": [{"node": "1", "input": "x"}]},
        {"id": "n", "label": "", "type": "bool", "bind": [{"node": "1", "input": "x"}]},
    ],
)
def test_field_rules(bad):
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate(base(inputs=[bad]))


def test_consistency_is_checked_by_plain_model_validate():
    field = {"id": "a", "label": "A", "type": "bool", "bind": [{"node": "1", "input": "x"}]}
    with pytest.raises(ValidationError, match="duplicate field id 'a'"):
        WorkflowSpec.model_validate(base(inputs=[field, field]))


def test_an_output_may_be_optional_and_says_so_with_a_json_boolean():
    spec = WorkflowSpec.model_validate(base(outputs=[{"node": "9"}, {"node": "16", "optional": True}]))
    assert [o.optional for o in spec.outputs] == [False, True]
    with pytest.raises(ValidationError, match="optional"):
        WorkflowSpec.model_validate(base(outputs=[{"node": "9", "optional": "yes"}]))
    assert "optional" in json.dumps(spec_json_schema()["$defs"]["Output"])
