"""The JSON Schema of a workflow's inputs, generated from its spec: each field typed, with its
limits, choices, default and whether it is required. It describes what `validate_inputs`
accepts, for the typed per-workflow operations of the OpenAPI document (client generators
turn each into a typed method)."""

from __future__ import annotations

from typing import Any

from workflows.spec import WorkflowSpec, parse_spec
from workflows.texts import text_key


def camel(slug: str) -> str:
    """`image-filters` → `ImageFilters` (a name for generated types)."""
    return "".join(part[:1].upper() + part[1:] for part in slug.split("-"))


def inputs_json_schema(spec: WorkflowSpec | dict[str, Any]) -> dict[str, Any]:
    spec = parse_spec(spec)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in spec.inputs:
        prop = _field_schema(field)
        # The OpenAPI document is one for every reader: its texts are the English ones.
        prop["title"] = text_key(field.label)
        if field.help:
            prop["description"] = text_key(field.help)
        properties[field.id] = prop
        if field.required and getattr(field, "default", None) is None and field.type != "seed":
            required.append(field.id)
        else:  # validate_inputs reads null as "not given": the default
            prop["type"] = [prop["type"], "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
    schema: dict[str, Any] = {
        "title": f"{camel(spec.slug)}Inputs",
        "description": f"The inputs of “{text_key(spec.name)}” {spec.version}. {text_key(spec.description)}".strip(),
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _field_schema(field: Any) -> dict[str, Any]:
    kind = field.type
    if kind == "text":
        prop: dict[str, Any] = {"type": "string"}
        if field.min_length:
            prop["minLength"] = field.min_length
        if field.max_length is not None:
            prop["maxLength"] = field.max_length
    elif kind in ("int", "float"):
        prop = {"type": "integer" if kind == "int" else "number"}
        if field.min is not None:
            prop["minimum"] = field.min
        if field.max is not None:
            prop["maximum"] = field.max
    elif kind == "bool":
        prop = {"type": "boolean"}
    elif kind == "choice" and getattr(field, "choices_from", None):
        # Files of the farm, which change while the document stands: checked at submit (422).
        prop = {"type": "string", "minLength": 1, "description": f"A file of the '{field.choices_from}' model folder."}
    elif kind == "choice":
        prop = {"type": "string", "enum": list(field.choices)}
    elif kind == "seed":
        return {
            "type": "integer",
            "minimum": -1,
            "maximum": field.max,
            "default": field.default,
            "description": f"A seed from {field.min} to {field.max}; -1 (the default if not given) picks one at random.",
        }
    else:  # image, mask: an upload's id
        prop = {
            "type": "string",
            "format": "uuid",
            "description": f"The id of an upload of kind '{kind}' (POST /api/uploads).",
        }
        return prop
    default = getattr(field, "default", None)
    if default is not None:
        prop["default"] = default
    return prop
