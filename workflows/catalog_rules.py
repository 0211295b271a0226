"""How comfyportal reads one node input of the ComfyUI catalogue (``/object_info``).

Small helpers over ``nodes.comfy.catalog`` shared by the upload validator and the spec drafter:
what kind of value an input takes, whether a combo is a free list of server files, and whether
a literal graph value would pass ComfyUI's own validation (protocol §2). Pure: no Django.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nodes.comfy.catalog import combo_options, input_spec

Catalog = dict[str, dict[str, Any]]

# Combos whose options are files on the GPU node rather than a fixed vocabulary. An empty list in
# object_info already means "files" (no weights installed); these also carry built-in entries
# (VAELoader lists "pixel_space"), so their list is not a closed set either.
FILE_COMBOS = frozenset({("VAELoader", "vae_name"), ("CheckpointLoader", "config_name")})
_UPLOAD_KEYS = ("image_upload", "upload", "image_folder", "remote")
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
AUTOGROW = "COMFY_AUTOGROW_V3"
MATCH_TYPE = "COMFY_MATCHTYPE_V3"


@dataclass(frozen=True)
class InputKind:
    """One input of a catalogued node, reduced to what validation needs.

    ``kind`` is "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO" or a link type ("IMAGE", "MODEL"…).
    ``choices`` is the combo's allowed values (None when not a combo); ``free_choices`` marks a
    list of server files, where any name is accepted.
    """

    section: str
    kind: str
    options: dict = field(default_factory=dict)
    choices: list | None = None
    free_choices: bool = False

    @property
    def minimum(self) -> float | None:
        return self.options.get("min")

    @property
    def maximum(self) -> float | None:
        return self.options.get("max")

    @property
    def is_widget(self) -> bool:
        """True for inputs that hold a typed value in the graph rather than a link."""
        if self.kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            return True
        if "," in self.kind and set(self.kind.split(",")) & {"INT", "FLOAT", "STRING", "BOOLEAN"}:
            return True  # a multi-typed input ("FLOAT,INT") takes a value too
        # V3 custom widgets (a colour, a curve, a bounding box) declare whether they have a socket.
        return "socketless" in self.options or "widgetType" in self.options


def input_kind(class_type: str, info: dict[str, Any], name: str) -> InputKind | None:
    """Return the InputKind of input ``name`` of a node class, or None if it has no such input."""
    found = input_spec(info, name)
    if found is None:
        return _dynamic_input_kind(class_type, info, name)
    section, kind, options = found
    if kind == DYNAMIC_COMBO:  # a plain value: the key of one of its options
        keys = [o.get("key") for o in options.get("options") or [] if isinstance(o, dict)]
        return InputKind(section, "COMBO", options, keys, False)
    choices = combo_options(kind, options)
    if kind == "COMFY_DYNAMICCOMBO_V3":
        # In a prompt such an input takes the key of one option (SaveVideo "format": "auto").
        keys = [o.get("key") for o in options.get("options", []) if isinstance(o, dict)]
        return InputKind(section, "COMBO", options, keys, False)
    if choices is not None:
        free = not choices or (class_type, name) in FILE_COMBOS or any(options.get(key) for key in _UPLOAD_KEYS)
        return InputKind(section, "COMBO", options, list(choices), free)
    return InputKind(section, str(kind), options)


def _dynamic_input_kind(class_type: str, info: dict[str, Any], name: str) -> InputKind | None:
    """The kind of a V3 dynamic input written ``parent.child``: an item of an Autogrow input
    (``values.a``) or an input that an option of a DynamicCombo brings (``format.codec``)."""
    parent, dot, child = name.partition(".")
    found = input_spec(info, parent) if dot else None
    if found is None:
        return None
    section, kind, options = found
    specs: list[Any] = []
    if kind == AUTOGROW:
        template = options.get("template") or {}
        specs = list(((template.get("input") or {}).get("required") or {}).values())[:1]
    elif kind == DYNAMIC_COMBO:
        for option in options.get("options") or []:
            for part in ("required", "optional"):
                spec = ((option.get("inputs") or {}).get(part) or {}).get(child) if isinstance(option, dict) else None
                if spec is not None:
                    specs.append(spec)
    if not specs or not isinstance(specs[0], list) or not specs[0]:
        return None
    sub = specs[0]
    sub_info = {"input": {"optional": {name: sub}}}
    return input_kind(class_type, sub_info, name)


def input_names(info: dict[str, Any]) -> list[str]:
    """Return the declared (required and optional) input names of a node class, in order."""
    order = info.get("input_order") or {}
    names = list(order.get("required", [])) + list(order.get("optional", []))
    if not names:
        inputs = info.get("input", {})
        names = list(inputs.get("required", {})) + list(inputs.get("optional", {}))
    return names


def is_link(value: Any) -> bool:
    """True when ``value`` has the shape ComfyUI reads as a link: a two-element list."""
    return isinstance(value, list) and len(value) == 2


def types_compatible(output_type: str, input_type: str) -> bool:
    """Mirror ComfyUI's link type check: "*" and a V3 MatchType match anything, "A,B" accepts either."""
    if output_type in ("*", MATCH_TYPE) or input_type in ("*", MATCH_TYPE):
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


def short_list(values: list, limit: int = 12) -> str:
    """Render allowed values for a message, cut after ``limit`` entries."""
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def literal_problem(spec: InputKind, value: Any) -> str | None:
    """Return why ComfyUI would refuse this literal for the input, or None if it passes.

    Follows protocol §2: INT/FLOAT/STRING/BOOLEAN values are converted with Python's casts,
    numbers checked against min/max, combos against their list unless the list is server files.
    """
    kind = spec.kind
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return f"expects a number, got {value!r}"
        try:
            number = int(value) if kind == "INT" else float(value)
        except (TypeError, ValueError, OverflowError):
            return f"expects {'a whole number' if kind == 'INT' else 'a number'}, got {value!r}"
        if isinstance(number, float) and not math.isfinite(number):
            return f"expects a finite number, got {value!r}"
        if spec.minimum is not None and number < spec.minimum:
            return f"value {value!r} is below the minimum {spec.minimum}"
        if spec.maximum is not None and number > spec.maximum:
            return f"value {value!r} is above the maximum {spec.maximum}"
        return None
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"expects true or false, got {value!r} (ComfyUI reads any non-empty string as true)"
        return None
    if kind == "STRING":
        if isinstance(value, (dict, list)):
            return f"expects text, got {type(value).__name__}"
        return None
    if kind == "COMBO":
        if spec.free_choices:
            if not isinstance(value, str):
                return f"expects a file name, got {value!r}"
            return None
        if value not in (spec.choices or []):
            return f"{value!r} is not one of: {short_list(spec.choices or [])}"
        return None
    return None  # a link type holding a literal: ComfyUI would report it; checked by the caller


# What the stock output nodes give. Animations count as video: they play, they are not stills.
OUTPUT_NODE_KINDS = {
    "SaveImage": "image",
    "PreviewImage": "image",
    "SaveVideo": "video",
    "SaveWEBM": "video",
    "SaveAnimatedWEBP": "video",
    "SaveAnimatedPNG": "video",
    "SaveAudio": "audio",
    "SaveAudioMP3": "audio",
    "SaveAudioOpus": "audio",
    "PreviewAudio": "audio",
}


def output_node_kind(class_type: str, info: dict[str, Any]) -> str | None:
    """What an output node gives: "image", "video" or "audio"; None when it cannot be told.

    Stock nodes are known by name; another output node by what it takes (an AUDIO input makes
    sound, a VIDEO input video, an IMAGE input pictures)."""
    if class_type in OUTPUT_NODE_KINDS:
        return OUTPUT_NODE_KINDS[class_type]
    takes = set()
    for section in ("required", "optional"):
        for spec in (info.get("input", {}).get(section) or {}).values():
            if isinstance(spec, list | tuple) and spec and isinstance(spec[0], str):
                takes.add(spec[0])
    for link_type, kind in (("AUDIO", "audio"), ("VIDEO", "video"), ("IMAGE", "image")):
        if link_type in takes:
            return kind
    return None
