"""ui_schema: the shape forms and API clients render from."""

from __future__ import annotations

import json

from workflows.spec import WorkflowSpec
from workflows.ui_schema import ui_schema

from .conftest import example_dirs, load_example


def test_top_level_shape(txt2img):
    schema = ui_schema(txt2img[1])
    assert set(schema) == {
        "slug",
        "name",
        "version",
        "category",
        "category_name",
        "description",
        "example_image",
        "requires_mask",
        "takes_media",
        "fields",
    }
    assert schema["slug"] == "sd15-txt2img" and schema["requires_mask"] is False
    assert [f["id"] for f in schema["fields"]] == [f["id"] for f in txt2img[1]["inputs"]]
    json.dumps(schema)  # plain JSON all the way down


def test_widgets_and_limits(txt2img):
    fields = {f["id"]: f for f in ui_schema(WorkflowSpec.model_validate(txt2img[1]))["fields"]}
    assert fields["prompt"]["widget"] == "textarea" and fields["prompt"]["max_length"] == 4000
    assert fields["steps"]["widget"] == "slider" and (fields["steps"]["min"], fields["steps"]["max"]) == (1, 100)
    assert fields["width"]["widget"] == "number" and fields["width"]["step"] == 64
    assert fields["sampler"]["widget"] == "select" and fields["sampler"]["default"] in fields["sampler"]["choices"]
    assert fields["seed"]["widget"] == "seed" and fields["seed"]["default"] == -1
    for field in fields.values():
        assert {"id", "type", "label", "help", "widget", "required", "default"} <= set(field)
        assert "bind" not in field  # node ids stay on the server


def test_image_and_mask_point_at_each_other():
    schema = ui_schema(load_example("sd15-inpaint")[1])
    fields = {f["id"]: f for f in schema["fields"]}
    assert schema["requires_mask"] is True
    assert fields["image"]["widget"] == "image" and fields["image"]["mask"] == "mask"
    assert fields["image"]["max_pixels"] == 16777216
    assert fields["mask"]["widget"] == "mask" and fields["mask"]["for_image"] == "image"
    assert fields["mask"]["mode"] == "file" and fields["mask"]["filter"] == "bilinear"


def test_every_example_renders():
    for folder in example_dirs():
        schema = ui_schema(json.loads((folder / "spec.json").read_text()))
        widgets = {f["widget"] for f in schema["fields"]}
        assert widgets <= {
            "textarea",
            "text",
            "number",
            "slider",
            "checkbox",
            "select",
            "seed",
            "image",
            "mask",
            "video",
            "audio",
        }
        for field in schema["fields"]:
            if field["type"] == "image":
                assert "mask" in field


def test_checkbox_widget():
    spec = {
        "spec_version": "1.0",
        "slug": "t",
        "name": "T",
        "version": "1.0",
        "outputs": [{"node": "9"}],
        "inputs": [{"id": "on", "label": "On", "type": "bool", "default": True, "bind": [{"node": "1", "input": "x"}]}],
    }
    field = ui_schema(spec)["fields"][0]
    assert field["widget"] == "checkbox" and field["default"] is True
