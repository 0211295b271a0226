"""validate_inputs: coercion of API and form values, each rule, per-field errors."""

from __future__ import annotations

import random

import pytest

from workflows.prompt import JS_SAFE_MAX, InputsInvalid, validate_inputs

from .conftest import load_example


def spec_with(*fields):
    return {
        "spec_version": "1.0",
        "slug": "t",
        "name": "T",
        "version": "1.0.0",
        "inputs": [
            dict(f, bind=f.get("bind", [{"node": "1", "input": f["id"]}]))
            if f["type"] != "mask" or f.get("mode") != "alpha"
            else f
            for f in fields
        ],
        "outputs": [{"node": "9"}],
    }


SPEC = spec_with(
    {"id": "prompt", "label": "P", "type": "text", "required": True, "max_length": 10, "min_length": 2},
    {"id": "note", "label": "N", "type": "text", "default": "hi"},
    {"id": "steps", "label": "S", "type": "int", "min": 1, "max": 100, "default": 20},
    {"id": "cfg", "label": "C", "type": "float", "min": 0.5, "max": 30.0},
    {"id": "tiled", "label": "T", "type": "bool", "default": False},
    {"id": "sampler", "label": "Sa", "type": "choice", "choices": ["euler", "ddim"], "default": "euler"},
    {"id": "seed", "label": "Se", "type": "seed"},
    {"id": "image", "label": "I", "type": "image", "required": False},
    {"id": "mask", "label": "M", "type": "mask", "required": False, "for_image": "image"},
)


def errors_of(values, spec=SPEC):
    with pytest.raises(InputsInvalid) as info:
        validate_inputs(spec, values)
    return info.value.errors


def test_defaults_applied_and_seed_resolved():
    out = validate_inputs(SPEC, {"prompt": "cat"}, rng=random.Random(0))
    assert out["steps"] == 20 and out["note"] == "hi" and out["tiled"] is False and out["sampler"] == "euler"
    assert 0 <= out["seed"] <= JS_SAFE_MAX
    assert "cfg" not in out and "image" not in out  # optional without default: the graph keeps its value
    assert list(out) == ["prompt", "note", "steps", "tiled", "sampler", "seed"]


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("steps", "12", 12),
        ("steps", " 7 ", 7),
        ("steps", 12.0, 12),
        ("steps", "30.0", 30),
        ("cfg", "7.5", 7.5),
        ("cfg", 7, 7.0),
        ("tiled", "on", True),
        ("tiled", "true", True),
        ("tiled", "off", False),
        ("tiled", "False", False),
        ("tiled", True, True),
        ("tiled", 1, True),
        ("sampler", "ddim", "ddim"),
        ("seed", "42", 42),
        ("seed", 2**64 - 1, 2**64 - 1),
        ("image", "abc123", "abc123"),
    ],
)
def test_coercion(field, raw, expected):
    values = {"prompt": "cat", field: raw}
    if field == "mask":
        values["image"] = "img"
    assert validate_inputs(SPEC, values)[field] == expected


@pytest.mark.parametrize("empty", [None, "", "-1", -1])
def test_random_seed_markers(empty):
    out = validate_inputs(SPEC, {"prompt": "cat", "seed": empty}, rng=random.Random(5))
    assert out["seed"] >= 0 and out["seed"] != -1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({}, "prompt", "is required"),
        ({"prompt": "   "}, "prompt", "is required"),
        ({"prompt": "x" * 11}, "prompt", "must be at most 10 characters"),
        ({"prompt": "x"}, "prompt", "must be at least 2 characters"),
        ({"prompt": 5}, "prompt", "must be text"),
        ({"steps": 101}, "steps", "must be at most 100"),
        ({"steps": "0"}, "steps", "must be at least 1"),
        ({"steps": "ten"}, "steps", "must be a whole number"),
        ({"steps": 2.5}, "steps", "must be a whole number"),
        ({"steps": True}, "steps", "must be a whole number"),
        ({"cfg": "hot"}, "cfg", "must be a number"),
        ({"cfg": "nan"}, "cfg", "must be a finite number"),
        ({"cfg": 0.1}, "cfg", "must be at least 0.5"),
        ({"tiled": "maybe"}, "tiled", "must be true or false"),
        ({"sampler": "fast"}, "sampler", "must be one of: euler, ddim"),
        ({"seed": 2**64}, "seed", "must be at most 18446744073709551615"),
        ({"seed": -5}, "seed", "must be at least 0"),
        ({"image": 12}, "image", "must be an upload id"),
        ({"mask": "m1"}, "mask", "needs the image 'image' as well"),
        ({"colour": "red"}, "colour", "is not a field of this workflow"),
    ],
)
def test_each_rule_has_its_message(values, field, message):
    values = {"prompt": "cat", **values} if field != "prompt" else values
    assert errors_of(values)[field] == message


def test_errors_are_per_field_and_all_reported():
    errors = errors_of({"steps": 500, "sampler": "x", "bogus": 1})
    assert set(errors) == {"prompt", "steps", "sampler", "bogus"}


def test_required_image_and_mask():
    _, spec = load_example("sd15-inpaint")
    errors = errors_of({"prompt": "a"}, spec)
    assert errors == {"image": "is required", "mask": "is required"}


def test_fixed_default_seed_is_kept():
    spec = spec_with({"id": "seed", "label": "S", "type": "seed", "default": 1234})
    assert validate_inputs(spec, {})["seed"] == 1234
    assert validate_inputs(spec, {"seed": 5})["seed"] == 5


def test_random_seed_in_a_narrow_high_range():
    spec = spec_with({"id": "seed", "label": "S", "type": "seed", "min": 2**60, "max": 2**60 + 3})
    assert 2**60 <= validate_inputs(spec, {})["seed"] <= 2**60 + 3


def test_optional_text_keeps_an_empty_string():
    spec = spec_with({"id": "neg", "label": "N", "type": "text", "default": "blurry"})
    assert validate_inputs(spec, {"neg": ""})["neg"] == ""
    assert validate_inputs(spec, {})["neg"] == "blurry"
