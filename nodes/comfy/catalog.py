"""The node catalogue of a stock ComfyUI server (its ``/object_info``), and lookups over it.

``object_info.json`` beside this file is the answer of a real ComfyUI 0.33.0 server with
no custom nodes (see ../shared/comfy/README.md). The upload validator uses it to check
bundled and uploaded workflows; the test ComfyUI server uses it to validate prompts the
way the real server does. Pure Python: imports no Django.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).with_name("object_info.json")

# Input types that carry a value typed in the graph (a "widget"), as opposed to a link.
PRIMITIVE_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})


@lru_cache(maxsize=1)
def object_info() -> dict[str, dict[str, Any]]:
    """Return the stock catalogue: ``{class_type: info}`` (read once, then cached)."""
    with CATALOG_PATH.open(encoding="utf-8") as f:
        return json.load(f)


def node_info(class_type: str) -> dict[str, Any] | None:
    """Return the catalogue entry of ``class_type``, or None for a class it does not know."""
    return object_info().get(class_type)


def input_spec(info: dict[str, Any], name: str) -> tuple[str, list | tuple | None, dict] | None:
    """Return ``(section, type_or_options, options)`` of one input of a node, or None.

    ``section`` is "required", "optional" or "hidden". ``type_or_options`` is the type
    string ("INT", "IMAGE", "COMBO", …) or, for a V1 combo, the list of allowed values.
    """
    inputs = info.get("input", {})
    for section in ("required", "optional", "hidden"):
        spec = inputs.get(section, {}).get(name)
        if spec is None:
            continue
        if isinstance(spec, str):  # hidden inputs are plain strings ("PROMPT")
            return section, spec, {}
        kind = spec[0]
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return section, kind, options
    return None


def combo_options(kind: Any, options: dict) -> list | None:
    """Return the allowed values of a combo input (V1 list form or V3 ``COMBO``), else None."""
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list(options.get("options", []))
    return None


def is_output_node(class_type: str) -> bool:
    info = node_info(class_type)
    return bool(info and info.get("output_node"))
