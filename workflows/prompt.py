"""User values → a ComfyUI prompt.

``validate_inputs`` checks and coerces what a user submitted (JSON from the API or strings from
an HTML form) against a workflow's spec and returns the values to store on the job, with random
seeds already resolved. ``build_prompt`` writes those values into a copy of the API-format graph,
ready for POST /prompt. Pure: no Django, no I/O.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import random
from collections.abc import Mapping
from typing import Any

from core.errors import field_errors_detail
from workflows.spec import WorkflowSpec, parse_spec, workflow_spec

# Random seeds stay below 2**53 so that a browser (JSON numbers are doubles) can show and reuse
# the exact seed; any seed the user types is still accepted up to the field's max.
JS_SAFE_MAX = 2**53 - 1

_TRUE = {"true", "on", "1", "yes"}
_FALSE = {"false", "off", "0", "no"}


class InputsInvalid(ValueError):
    """Raised by ``validate_inputs``; ``errors`` maps a field id to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(field_errors_detail(errors))


class PromptBuildError(ValueError):
    """Raised by ``build_prompt`` when values and uploads do not fit the workflow."""


class _Bad(Exception):
    """A value broke a rule; the message is what the user sees after the field name."""


def _spec_of(obj: Any) -> WorkflowSpec:
    return workflow_spec(obj) if not isinstance(obj, (WorkflowSpec, dict)) else parse_spec(obj)


def random_seed(lo: int, hi: int, rng: random.Random | None = None) -> int:
    """Return a random seed in [lo, hi], kept ≤ 2**53-1 when the range allows it."""
    top = min(hi, JS_SAFE_MAX) if lo <= JS_SAFE_MAX else hi
    return (rng or random.SystemRandom()).randint(lo, top)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def validate_inputs(
    spec: WorkflowSpec | dict[str, Any],
    raw_values: Mapping[str, Any],
    *,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Return the clean values of a submission: ``{field_id: value}`` in spec order.

    Coerces form strings ("12" → 12, "on" → True), applies defaults, resolves random seeds
    (-1, empty or missing) to a real seed so the job records the seed used. A field that is
    optional, not given and has no default is left out (the graph keeps its own value).
    Image and mask values are upload ids (strings), only checked for presence here.
    Raises InputsInvalid with one message per bad field, and for ids the spec does not have.
    """
    spec = parse_spec(spec)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    known = {f.id for f in spec.inputs}
    for key in raw_values:
        if key not in known:
            errors[str(key)] = "is not a field of this workflow"
    for fld in spec.inputs:
        raw = raw_values.get(fld.id)
        try:
            value = _clean(fld, raw, rng)
        except _Bad as exc:
            errors[fld.id] = str(exc)
            continue
        if value is not None:
            out[fld.id] = value
    for fld in spec.inputs:  # a mask without its image cannot be merged or sized
        if fld.type == "mask" and fld.id in out and fld.for_image not in out and fld.for_image not in errors:
            errors[fld.id] = f"needs the image {fld.for_image!r} as well"
    if errors:
        raise InputsInvalid(errors)
    return out


def _clean(fld: Any, raw: Any, rng: random.Random | None) -> Any:
    """Return the clean value of one field (None = leave out), or raise _Bad."""
    kind = fld.type
    if kind == "seed":
        if _missing(raw):  # not given: the spec's default, which may itself mean random
            return random_seed(fld.min, fld.max, rng) if fld.default == -1 else fld.default
        value = _as_int(raw)
        if value == -1:  # asked for explicitly: always a fresh random seed
            return random_seed(fld.min, fld.max, rng)
        return _in_range(value, fld.min, fld.max)
    if kind == "text":
        if raw is None:
            raw = fld.default
        if raw is None:
            if fld.required:
                raise _Bad("is required")
            return None
        if not isinstance(raw, str):
            raise _Bad("must be text")
        if fld.required and not raw.strip():
            raise _Bad("is required")
        if fld.max_length is not None and len(raw) > fld.max_length:
            raise _Bad(f"must be at most {fld.max_length} characters")
        if raw and len(raw) < fld.min_length:
            raise _Bad(f"must be at least {fld.min_length} characters")
        return raw
    if _missing(raw):
        default = getattr(fld, "default", None)
        if default is not None:
            return default
        if fld.required:
            raise _Bad("is required")
        return None
    if kind == "int":
        return _in_range(_as_int(raw), fld.min, fld.max)
    if kind == "float":
        return _in_range(_as_float(raw), fld.min, fld.max)
    if kind == "bool":
        return _as_bool(raw)
    if kind == "choice":
        value = (
            raw
            if isinstance(raw, str)
            else (str(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None)
        )
        if fld.choices_from is not None:  # a model file: whether the farm has it is checked at submit
            if not value or not value.strip() or len(value) > 500 or "\x00" in value:
                raise _Bad(f"must be the name of a file in {fld.choices_from}")
            if fld.match is not None and not fnmatch.fnmatchcase(value, fld.match):
                raise _Bad(f"must be a file of {fld.choices_from} matching {fld.match!r}")
            return value
        if value not in fld.choices:
            raise _Bad("must be one of: " + ", ".join(fld.choices))
        return value
    if kind in ("image", "mask", "video", "audio"):
        if not isinstance(raw, str):
            raise _Bad("must be an upload id")
        return raw.strip()
    raise _Bad(f"has an unknown type {kind!r}")  # unreachable with a valid spec


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Bad("must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if math.isfinite(raw) and raw.is_integer():
            return int(raw)
        raise _Bad("must be a whole number")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise _Bad("must be a whole number") from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise _Bad("must be a whole number")


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise _Bad("must be a number")
    try:
        number = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise _Bad("must be a number") from None
    if not math.isfinite(number):
        raise _Bad("must be a finite number")
    return number


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Bad("must be true or false")


def _in_range(value: Any, lo: Any, hi: Any) -> Any:
    if lo is not None and value < lo:
        raise _Bad(f"must be at least {lo}")
    if hi is not None and value > hi:
        raise _Bad(f"must be at most {hi}")
    return value


def build_prompt(
    workflow: Any,
    values: Mapping[str, Any],
    uploaded_names: Mapping[str, str],
    *,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Return a new API-format graph with the job's values written into the bound inputs.

    ``workflow`` is anything with ``.graph`` and ``.spec`` (a model or a dict), e.g. the Django
    row or a ValidatedWorkflow. ``values`` are the output of validate_inputs. ``uploaded_names``
    maps an image or mask field id to the name ComfyUI's upload returned (``sub/x.png``); for an
    alpha-mode mask it is the merged file from /upload/mask, which then replaces its image's
    LoadImage input. File-mode masks also get LoadImageMask ``channel`` set to "red" (we send
    R=G=B PNGs). Nothing else in the graph changes; the input graph is not mutated. A seed still
    at -1 or None is resolved here (with ``rng``). Raises PromptBuildError when a given image or
    mask has no uploaded name, or a bound node is missing from the graph.
    """
    spec = _spec_of(workflow)
    graph = copy.deepcopy(workflow.graph)
    alpha_for_image = {f.for_image: f.id for f in spec.inputs if f.type == "mask" and f.mode == "alpha"}

    def put(node_id: str, name: str, value: Any) -> None:
        node = graph.get(node_id)
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            raise PromptBuildError(f"node {node_id!r} is not in the workflow graph")
        node["inputs"][name] = value

    for fld in spec.inputs:
        if fld.id not in values and fld.type != "seed":
            continue
        value = values.get(fld.id)
        if fld.type == "seed":
            if value is None or value == -1:
                value = random_seed(fld.min, fld.max, rng) if fld.default == -1 else fld.default
        elif fld.type == "image":
            mask_id = alpha_for_image.get(fld.id)
            if mask_id is not None and mask_id in values and uploaded_names.get(mask_id):
                value = uploaded_names[mask_id]  # the image with the mask merged into its alpha
            elif uploaded_names.get(fld.id):
                value = uploaded_names[fld.id]
            else:
                raise PromptBuildError(f"image field {fld.id!r} has no uploaded file name")
        elif fld.type in ("video", "audio"):  # LoadVideo.file / LoadAudio.audio name the uploaded file
            if not uploaded_names.get(fld.id):
                raise PromptBuildError(f"{fld.type} field {fld.id!r} has no uploaded file name")
            value = uploaded_names[fld.id]
        elif fld.type == "mask":
            if fld.mode == "alpha":
                if not uploaded_names.get(fld.id):
                    raise PromptBuildError(f"mask field {fld.id!r} has no uploaded (merged) file name")
                continue  # written through its image's LoadImage above
            if not uploaded_names.get(fld.id):
                raise PromptBuildError(f"mask field {fld.id!r} has no uploaded file name")
            value = uploaded_names[fld.id]
            for bind in fld.bind:
                put(bind.node, "channel", "red")
        for bind in fld.bind:
            put(bind.node, bind.input, value)
    return graph
