"""The form description that the HTMX page and API clients render a workflow from.

``ui_schema(spec)`` flattens a spec into plain JSON: one entry per field, in spec order, with the
widget to draw and its limits. Bindings are left out on purpose: they are a server concern, and
clients should not learn the graph's node ids. Pure: no Django.
"""

from __future__ import annotations

from typing import Any

from workflows.spec import WorkflowSpec, parse_spec
from workflows.texts import category_name, text_in, text_key

# Keys copied from a field when the field has them set.
_LIMIT_KEYS = (
    "min",
    "max",
    "step",
    "min_length",
    "max_length",
    "max_pixels",
    "max_side",
    "max_bytes",
    "max_seconds",
    "max_frames",
)
_MASK_KEYS = ("mode", "invert", "grow", "soft_edges", "filter")


def widget_for(field: Any) -> str:
    """Return the widget name for a field: textarea, text, number, slider, checkbox, select,
    seed, image, mask, video or audio."""
    kind = field.type
    if kind == "text":
        return "textarea" if field.multiline else "text"
    if kind in ("int", "float"):
        return field.widget
    return {
        "bool": "checkbox",
        "choice": "select",
        "seed": "seed",
        "image": "image",
        "mask": "mask",
        "video": "video",
        "audio": "audio",
    }[kind]


def ui_schema(
    spec: WorkflowSpec | dict[str, Any],
    model_choices: dict[str, list[tuple[str, int]]] | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Return ``{slug, name, version, category, category_name, description, example_image,
    requires_mask, fields}``, its texts (name, description, labels, help, placeholders, choice
    labels) in ``language`` (English when a text lacks it); ``category`` is the key, the same in
    every language, ``category_name`` what readers see.

    Each field has id, type, label, help, widget, required and default, plus what its type uses:
    min/max/step, choices, min_length/max_length/placeholder, max_pixels/max_side, and for masks
    ``for_image`` and the normalization settings; an image that has a mask carries ``mask``
    (that mask's id). A ``choices_from`` field lists the files of ``model_choices[field id]``
    (``[(name, nodes online)]``, from the farm) as ``choices`` and, with their counts, as
    ``models``; a fixed choice list also comes as ``options``, ``[{value, label}]``. Its default is the spec's when offered, else the first file. Raises
    pydantic.ValidationError if a dict spec is invalid.
    """
    model_choices = model_choices or {}
    spec = parse_spec(spec)
    mask_of = {f.for_image: f.id for f in spec.inputs if f.type == "mask"}
    fields = []
    for fld in spec.inputs:
        entry: dict[str, Any] = {
            "id": fld.id,
            "type": fld.type,
            "label": text_in(fld.label, language),
            "help": text_in(fld.help, language),
            "widget": widget_for(fld),
            "required": fld.required,
            "default": getattr(fld, "default", None),
        }
        for key in _LIMIT_KEYS:
            value = getattr(fld, key, None)
            if value is not None and value != "":
                entry[key] = value
        if fld.type == "choice" and fld.choices_from is not None:
            offered = model_choices.get(fld.id, [])
            names = [name for name, _ in offered]
            entry["choices"] = names
            entry["choices_from"] = fld.choices_from
            entry["match"] = fld.match
            entry["models"] = [{"name": name, "nodes_online": online} for name, online in offered]
            entry["default"] = fld.default if fld.default in names else (names[0] if names else None)
        elif fld.type == "choice":
            entry["choices"] = list(fld.choices)
            entry["options"] = [
                {"value": value, "label": text_in(fld.choice_labels.get(value), language) or value}
                for value in fld.choices
            ]
        if fld.type == "text":
            entry["multiline"] = fld.multiline
            if fld.placeholder:
                entry["placeholder"] = text_in(fld.placeholder, language)
        if fld.type == "image":
            entry["mask"] = mask_of.get(fld.id)
        if fld.type == "mask":
            entry["for_image"] = fld.for_image
            for key in _MASK_KEYS:
                entry[key] = getattr(fld, key)
        fields.append(entry)
    return {
        "slug": spec.slug,
        "name": text_in(spec.name, language),
        "version": spec.version,
        "category": text_key(spec.category),
        "category_name": category_name(spec.category, language),
        "description": text_in(spec.description, language),
        "example_image": spec.example_image,
        "requires_mask": spec.requires_mask,
        "takes_media": any(f.type in ("video", "audio") for f in spec.inputs),
        "fields": fields,
    }
