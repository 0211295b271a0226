"""The test ComfyUI's validator on V3 dynamic types, as the real server treats them.

MatchType links pass either way (comfy_execution/validation.py leaves them to the frontend);
an Autogrow input is checked item by item (``values.a``); a DynamicCombo's chosen option brings
its own inputs (``resize_type.width``), which are then required.
"""

from __future__ import annotations

from testcomfy.catalog import Catalog
from testcomfy.validation import Validator


def validate(prompt: dict) -> tuple[bool, dict]:
    validator = Validator(Catalog(input_files=list, model_files=lambda folder: []), lambda name: True, "/comfy")
    ok, _error, _good, node_errors = validator.validate_prompt(prompt)
    return ok, node_errors


def errors_of(node_errors: dict) -> list[tuple[str, str]]:
    return [(e["type"], e["details"]) for entry in node_errors.values() for e in entry["errors"]]


def test_a_switch_node_takes_and_gives_any_type():
    prompt = {
        "1": {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "a"}},
        "2": {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "b"}},
        "3": {"class_type": "ComfySwitchNode", "inputs": {"on_false": ["1", 0], "on_true": ["2", 0], "switch": True}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0], "clip": ["6", 1]}},
        "6": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
        "7": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["5", 0]}},
    }
    ok, node_errors = validate(prompt)
    assert ok, node_errors


def math(values: dict) -> dict:
    return {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
        "2": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * 2", **values}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }


def test_autogrow_items_are_validated_one_by_one():
    assert validate(math({"values.a": ["1", 0], "values.b": 4}))[0]
    ok, node_errors = validate(math({}))
    assert not ok and ("required_input_missing", "values.a") in errors_of(node_errors)
    ok, node_errors = validate(math({"values.a": ["1", 0], "values.b": "x"}))
    assert ok  # a multi-typed item ("FLOAT,INT,BOOLEAN") is not converted, as on the server


def resize(extra: dict) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {
            "class_type": "ResizeImageMaskNode",
            "inputs": {"input": ["1", 0], "resize_type": "scale dimensions", "scale_method": "area", **extra},
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


def test_a_dynamic_combo_option_brings_required_inputs():
    full = {"resize_type.width": 16, "resize_type.height": 16, "resize_type.crop": "center"}
    assert validate(resize(full))[0]
    ok, node_errors = validate(resize({"resize_type.width": 16}))
    assert not ok and ("required_input_missing", "resize_type.height") in errors_of(node_errors)
    ok, node_errors = validate(resize({**full, "resize_type.width": 99999}))
    assert not ok and any(t == "value_bigger_than_max" for t, _ in errors_of(node_errors))
