"""Upload-time validation of a workflow graph together with its spec.

``validate_upload`` takes the two files an admin uploads (``workflow.json`` in ComfyUI API format
and ``spec.json``) and either returns a ``ValidatedWorkflow`` or raises ``WorkflowInvalid`` listing
every problem it found, each naming its file, its place and what is wrong. Checks are made against
the node catalogue of a stock ComfyUI (``nodes.comfy.catalog``) or one passed in; a node class the
catalogue does not know is a warning only (custom nodes are allowed). Pure: no Django.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from nodes.comfy.catalog import object_info
from nodes.inventory import MODEL_FOLDERS
from workflows.catalog_rules import (
    Catalog,
    InputKind,
    input_kind,
    input_names,
    is_link,
    output_node_kind,
    short_list,
)
from workflows.graph_checks import FileName, Report, WorkflowError, check_graph_nodes, node_label
from workflows.spec import FIELD_TYPES, WorkflowSpec, spec_consistency_errors
from workflows.ui_format import UIConversionError, convert_ui_workflow

__all__ = [
    "ValidatedWorkflow",
    "WorkflowError",
    "WorkflowInvalid",
    "detect_ui_format",
    "graph_class_types",
    "validate_upload",
    "workflow_graph",
]

EXPORT_HINT = (
    "In ComfyUI, open Settings and enable 'Dev mode' (older menus) or use the Workflow menu, "
    "then choose 'Export (API)' and upload that file."
)

# Which input of which node class each media field type may set.
IMAGE_TARGETS = {("LoadImage", "image")}
MASK_TARGETS = {("LoadImageMask", "image")}
VIDEO_TARGETS = {("LoadVideo", "file")}
AUDIO_TARGETS = {("LoadAudio", "audio")}
FILE_TARGETS = {"image": IMAGE_TARGETS, "mask": MASK_TARGETS, "video": VIDEO_TARGETS, "audio": AUDIO_TARGETS}
FILE_TARGET_NAMES = {
    "image": "a LoadImage node's 'image' input",
    "mask": "a LoadImageMask (file mode) node's 'image' input",
    "video": "a LoadVideo node's 'file' input",
    "audio": "a LoadAudio node's 'audio' input",
}


# Field type -> catalogue input kinds it may be bound to.
BIND_KINDS = {
    "text": {"STRING"},
    "int": {"INT", "FLOAT"},
    "float": {"FLOAT"},
    "bool": {"BOOLEAN"},
    "choice": {"COMBO", "STRING"},
    "seed": {"INT"},
}


class WorkflowInvalid(ValueError):
    """Raised by ``validate_upload``; ``errors`` lists every problem, ``warnings`` the rest."""

    def __init__(self, errors: list[WorkflowError], warnings: list[WorkflowError] | None = None):
        self.errors = errors
        self.warnings = warnings or []
        super().__init__("\n".join(str(e) for e in errors))


@dataclass
class ValidatedWorkflow:
    """A graph and spec that passed validation.

    ``spec`` is the model, ``spec_dict`` its JSON-ready dict (what to store). ``warnings`` are
    non-fatal findings (unknown node classes, inputs ComfyUI ignores…) as readable lines
    ("workflow: 20: …"), JSON-ready so they can be stored; ``warning_details`` has the same as
    WorkflowError objects.
    """

    graph: dict[str, Any]
    spec: WorkflowSpec
    spec_dict: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    warning_details: list[WorkflowError] = field(default_factory=list)
    class_types: set[str] = field(default_factory=set)
    requires_mask: bool = False
    converted: bool = False  # the upload was a UI-format workflow, converted to ``graph``
    combo_inputs: list[list[str]] = field(default_factory=list)


def combo_literals(graph: dict[str, Any], catalog: Catalog) -> list[list[str]]:
    """``[[node id, class_type, input, value]]`` for the graph's text values at combo inputs (and
    at every input of a class the catalogue does not know): where model files can be named.
    Stored with the workflow so that a submit finds the job's model files without the graph."""
    out = []
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type = node.get("class_type")
        info = catalog.get(class_type) if isinstance(class_type, str) else None
        for name, value in node["inputs"].items():
            if not isinstance(value, str) or not value:
                continue
            kind = input_kind(class_type, info, name) if info else None
            if info is None or (kind is not None and kind.kind == "COMBO"):
                out.append([str(node_id), str(class_type), name, value])
    return out


def detect_ui_format(obj: Any) -> bool:
    """True when ``obj`` is a ComfyUI editor (UI-format) workflow: it has a ``nodes`` array."""
    return isinstance(obj, dict) and isinstance(obj.get("nodes"), list)


def graph_class_types(graph: dict[str, Any]) -> set[str]:
    """Return the set of ``class_type`` values in an API-format graph (skipping broken nodes)."""
    return {
        node["class_type"]
        for node in graph.values()
        if isinstance(node, dict) and isinstance(node.get("class_type"), str)
    }


@dataclass
class LoadedGraph:
    """A decoded workflow as an API-format graph: ``converted`` when it was a UI-format one,
    ``exposed`` the inputs its author showed on subgraph nodes (see ``ui_format.Conversion``)."""

    graph: dict[str, Any]
    warnings: list[str]
    converted: bool = False
    exposed: list = field(default_factory=list)
    models: list = field(default_factory=list)


def workflow_graph(
    obj: Any, *, catalog: Catalog | None = None, available: Collection[str] | None = None
) -> LoadedGraph:
    """Return the API-format graph of a decoded workflow in either format.

    A UI-format workflow is converted (``workflows.ui_format``); an API-format one is returned as
    it is. Raises WorkflowInvalid when the conversion is refused or the object is no graph.
    """
    catalog = object_info() if catalog is None else catalog
    report = Report()
    if detect_ui_format(obj):
        try:
            conversion = convert_ui_workflow(obj, catalog, available=available)
        except UIConversionError:
            conversion = None
        if conversion is not None:
            return LoadedGraph(conversion.prompt, conversion.warnings, True, conversion.exposed, conversion.models)
    graph = _check_graph_shape(obj, report, catalog, available)
    if graph is None:
        raise WorkflowInvalid(report.errors, report.warnings)
    return LoadedGraph(graph, [str(w) for w in report.warnings])


def validate_upload(
    workflow_raw: bytes | str | dict,
    spec_raw: bytes | str | dict,
    *,
    catalog: Catalog | None = None,
    available: Collection[str] | None = None,
    model_folders: Collection[str] = (),
) -> ValidatedWorkflow:
    """Validate an uploaded graph (API or UI format) and its spec against each other and the catalogue.

    ``catalog`` defaults to the stock ComfyUI 0.33 ``object_info``; ``available`` is the set of
    node classes the GPU servers have (default: the catalogue's), which a UI-format workflow must
    stay within. A UI-format workflow is converted first and its API-format graph is what is
    validated and returned. A ``choices_from`` folder must be one of ComfyUI's model folders or of
    ``model_folders`` (those the farm's nodes list). Returns a ValidatedWorkflow (the graph is a
    copy; the caller's objects are not changed). Raises WorkflowInvalid with every error found, so
    an admin can fix them all in one go.
    """
    catalog = object_info() if catalog is None else catalog
    report = Report()

    graph = _load_json(workflow_raw, "workflow", report)
    converted = detect_ui_format(graph)
    if graph is not None:
        graph = _check_graph_shape(graph, report, catalog, available)
    if graph is not None:
        check_graph_nodes(graph, catalog, report)

    spec_data = _load_json(spec_raw, "spec", report)
    spec: WorkflowSpec | None = None
    if spec_data is not None:
        spec = _parse_spec(spec_data, report)
    if spec is not None:
        for path, message in spec_consistency_errors(spec):
            report.error("spec", path, message)
        _check_model_folders(spec, set(MODEL_FOLDERS) | set(model_folders), report)
        if graph is not None:
            _check_binds(spec, graph, catalog, report)
            _check_outputs(spec, graph, catalog, report)

    if report.errors or graph is None or spec is None:
        raise WorkflowInvalid(report.errors, report.warnings)
    return ValidatedWorkflow(
        graph=graph,
        spec=spec,
        spec_dict=spec.model_dump(mode="json", exclude_none=True),
        warnings=[str(w) for w in report.warnings],
        warning_details=report.warnings,
        class_types=graph_class_types(graph),
        requires_mask=spec.requires_mask,
        converted=converted,
        combo_inputs=combo_literals(graph, catalog),
    )


# --- parsing -------------------------------------------------------------------------------


def _load_json(raw: bytes | str | dict, file: FileName, report: Report) -> Any:
    """Return the decoded JSON value, or None after reporting why it could not be read."""
    if isinstance(raw, dict):
        return copy.deepcopy(raw)
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            report.error(file, "", f"is not UTF-8 text (bad byte at offset {exc.start})")
            return None
    if not isinstance(raw, str):
        report.error(file, "", f"expected JSON text or an object, got {type(raw).__name__}")
        return None
    if not raw.strip():
        report.error(file, "", "is empty")
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        report.error(file, "", f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        return None
    except RecursionError:
        report.error(file, "", "is nested too deeply to be a workflow")
        return None


def _check_graph_shape(
    obj: Any, report: Report, catalog: Catalog, available: Collection[str] | None
) -> dict[str, Any] | None:
    """Return the API-format graph (a UI-format workflow converted), else report and return None."""
    if detect_ui_format(obj):
        try:
            conversion = convert_ui_workflow(obj, catalog, available=available)
        except UIConversionError as exc:
            for problem in exc.problems:
                report.error("workflow", "", f"cannot convert this UI-format workflow: {problem}")
            if not exc.missing:
                report.error(
                    "workflow", "", "if it runs in your ComfyUI, upload its API format instead. " + EXPORT_HINT
                )
            return None
        for warning in conversion.warnings:
            report.warn("workflow", "", warning)
        return conversion.prompt
    if not isinstance(obj, dict):
        report.error("workflow", "", f"must be a JSON object of nodes, got a JSON {_json_type(obj)}")
        return None
    if not obj:
        report.error("workflow", "", "the graph is empty: it has no nodes")
        return None
    if "spec_version" in obj and "inputs" in obj:
        report.error("workflow", "", "this is a spec, not a graph: were the two files swapped?")
        return None
    if isinstance(obj.get("prompt"), dict) and "class_type" not in obj["prompt"]:
        report.error(
            "workflow", "prompt", "this looks like a /prompt request body; upload only the graph inside 'prompt'"
        )
        return None
    return obj


def _parse_spec(data: Any, report: Report) -> WorkflowSpec | None:
    """Return the spec model, or None after turning pydantic's errors into readable ones."""
    if not isinstance(data, dict):
        report.error("spec", "", f"must be a JSON object, got a JSON {_json_type(data)}")
        return None
    try:
        return WorkflowSpec.model_validate(data, context={"defer_consistency": True})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path, message = _readable_pydantic_error(err, data)
            report.error("spec", path, message)
        return None


def _readable_pydantic_error(err: dict[str, Any], data: dict[str, Any]) -> tuple[str, str]:
    """Turn one pydantic error into ``(path, message)``, dropping union tags from the path."""
    loc = list(err["loc"])
    # A discriminated union puts the tag ("int", "mask"…) after the list index; it is noise here.
    if len(loc) >= 3 and loc[0] == "inputs" and isinstance(loc[1], int) and loc[2] in FIELD_TYPES:
        del loc[2]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind, message = err["type"], err["msg"]
    if kind == "union_tag_invalid":
        got = err.get("ctx", {}).get("tag")
        message = f"unknown field type {got!r}; use one of: {', '.join(FIELD_TYPES)}"
        path += ".type"
    elif kind == "union_tag_not_found":
        message = f"the field has no 'type'; use one of: {', '.join(FIELD_TYPES)}"
        path += ".type"
    elif kind == "extra_forbidden" and loc[-1] in ("choices_from", "match"):
        message = f"{loc[-1]} is allowed only on a choice field"
    elif kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif kind == "missing":
        message = "is required"
    elif kind == "string_pattern_mismatch":
        message = f"{err.get('input')!r} has the wrong form ({_pattern_hint(str(loc[-1]))})"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    # Name the field in the path, so an admin reads "inputs[2] (steps).max".
    if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
        items = data.get("inputs")
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            field_id = items[loc[1]].get("id")
            if isinstance(field_id, str):
                message = f"field {field_id!r}: {message}"
    return path, message


def _pattern_hint(key: str) -> str:
    return {
        "slug": "lowercase letters, digits and single hyphens, like 'sd15-txt2img'",
        "version": "a version like 1.0.0",
        "id": "letters, digits and _, not starting with a digit",
        "for_image": "a field id",
    }.get(key, "see the spec format")


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


# --- spec against graph --------------------------------------------------------------------


def _check_binds(spec: WorkflowSpec, graph: dict[str, Any], catalog: Catalog, report: Report) -> None:
    """Check that every bind names a real node input whose type suits the field."""
    bound_by: dict[tuple[str, str], str] = {}
    fields = {f.id: f for f in spec.inputs}
    for i, fld in enumerate(spec.inputs):
        for j, bind in enumerate(fld.bind):
            path = f"inputs[{i}].bind[{j}]"
            node = graph.get(bind.node)
            if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
                known = ", ".join(sorted(graph, key=_node_sort_key)[:30])
                report.error(
                    "spec",
                    path + ".node",
                    f"field {fld.id!r}: node {bind.node!r} is not in the workflow (nodes: {known})",
                )
                continue
            class_type = node["class_type"]
            inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
            info = catalog.get(class_type)
            kind = input_kind(class_type, info, bind.input) if info else None
            if info is not None and kind is None:
                report.error(
                    "spec",
                    path + ".input",
                    f"field {fld.id!r}: {class_type} (node {bind.node!r}) has no input {bind.input!r}; "
                    f"its inputs are: {', '.join(input_names(info))}",
                )
                continue
            if info is None and bind.input not in inputs:
                report.error(
                    "spec",
                    path + ".input",
                    f"field {fld.id!r}: node {bind.node!r} ({class_type}) has no input {bind.input!r} in the workflow",
                )
                continue
            key = (bind.node, bind.input)
            if key in bound_by:
                report.error(
                    "spec",
                    path,
                    f"field {fld.id!r}: input {bind.input!r} of node {bind.node!r} is already set by field "
                    f"{bound_by[key]!r}",
                )
                continue
            bound_by[key] = fld.id
            if is_link(inputs.get(bind.input)):
                report.error(
                    "spec",
                    path + ".input",
                    f"field {fld.id!r}: input {bind.input!r} of {node_label(bind.node, graph)} is connected "
                    f"to node {inputs[bind.input][0]!r} in the workflow; a field can only set an input that holds "
                    "a value",
                )
                continue
            _check_bind_type(fld, class_type, bind.input, kind, path, report)
    for i, fld in enumerate(spec.inputs):
        if fld.type == "mask" and fld.mode == "alpha":
            _check_alpha_mask(i, fld, fields.get(fld.for_image), graph, report)


def _check_bind_type(fld: Any, class_type: str, name: str, kind: InputKind | None, path: str, report: Report) -> None:
    """Check one bind's target against the field's type (and the catalogue's limits)."""
    target = (class_type, name)
    prefix = f"field {fld.id!r}"
    if fld.type in FILE_TARGETS:
        if target not in FILE_TARGETS[fld.type]:
            article = "an" if fld.type[0] in "aeiou" else "a"
            report.error(
                "spec",
                path + ".input",
                f"{prefix}: {article} {fld.type} field must bind to {FILE_TARGET_NAMES[fld.type]}, "
                f"not {class_type}.{name}",
            )
        return
    if kind is None:
        return  # a custom node: nothing to compare with
    for file_type, targets in FILE_TARGETS.items():
        if target in targets:
            report.error(
                "spec",
                path + ".input",
                f"{prefix}: {class_type}.{name} takes an uploaded file; use a {file_type} field",
            )
            return
    if kind.kind not in BIND_KINDS[fld.type]:
        report.error(
            "spec",
            path + ".input",
            f"{prefix}: a {fld.type} field cannot set {class_type}.{name}, which takes {kind.kind}"
            + (f" (allowed kinds: {', '.join(sorted(BIND_KINDS[fld.type]))})" if fld.type != "text" else ""),
        )
        return
    if fld.type in ("int", "float", "seed"):
        _check_limits(fld, class_type, name, kind, path, report)
    if fld.type == "choice" and fld.choices_from is not None:
        if kind.kind != "COMBO" or not kind.free_choices:
            report.error(
                "spec",
                path + ".input",
                f"{prefix}: choices_from offers model files, but {class_type}.{name} does not take a file "
                "(bind it to a loader's file input, such as CheckpointLoaderSimple.ckpt_name)",
            )
        return
    if fld.type == "choice" and kind.kind == "COMBO" and not kind.free_choices:
        for c, choice in enumerate(fld.choices):
            if choice not in (kind.choices or []):
                report.error(
                    "spec",
                    f"{path.rsplit('.bind', 1)[0]}.choices[{c}]",
                    f"{prefix}: {choice!r} is not allowed by {class_type}.{name} "
                    f"(allowed: {short_list(kind.choices or [])})",
                )


def _check_limits(fld: Any, class_type: str, name: str, kind: InputKind, path: str, report: Report) -> None:
    field_path = path.rsplit(".bind", 1)[0]
    lo, hi = kind.minimum, kind.maximum
    if lo is not None:
        if fld.min is None:
            report.warn(
                "spec",
                field_path + ".min",
                f"field {fld.id!r} has no min; ComfyUI refuses values below {lo} for {class_type}.{name}",
            )
        elif fld.min < lo:
            report.error(
                "spec",
                field_path + ".min",
                f"field {fld.id!r}: min {fld.min} is below {class_type}.{name}'s minimum {lo}",
            )
    if hi is not None:
        if fld.max is None:
            report.warn(
                "spec",
                field_path + ".max",
                f"field {fld.id!r} has no max; ComfyUI refuses values above {hi} for {class_type}.{name}",
            )
        elif fld.max > hi:
            report.error(
                "spec",
                field_path + ".max",
                f"field {fld.id!r}: max {fld.max} is above {class_type}.{name}'s maximum {hi}",
            )
    default = getattr(fld, "default", None)
    if fld.type != "seed" and default is not None:
        if (lo is not None and default < lo) or (hi is not None and default > hi):
            report.error(
                "spec",
                field_path + ".default",
                f"field {fld.id!r}: default {default} is outside {class_type}.{name}'s range {lo}…{hi}",
            )


def _check_model_folders(spec: WorkflowSpec, known: set[str], report: Report) -> None:
    for i, fld in enumerate(spec.inputs):
        folder = getattr(fld, "choices_from", None)
        if folder is not None and folder not in known:
            report.error(
                "spec",
                f"inputs[{i}].choices_from",
                f"field {fld.id!r}: unknown model folder {folder!r}; use one of: {short_list(sorted(known), 30)}",
            )


def _check_alpha_mask(i: int, fld: Any, image: Any, graph: dict[str, Any], report: Report) -> None:
    """An alpha mask reaches ComfyUI only through its image's LoadImage node."""
    if image is None or image.type != "image":
        return  # already reported by spec_consistency_errors
    loaders = [
        b.node
        for b in image.bind
        if isinstance(graph.get(b.node), dict) and graph[b.node].get("class_type") == "LoadImage"
    ]
    if not loaders or len(loaders) != len(image.bind):
        report.error(
            "spec",
            f"inputs[{i}].mode",
            f"field {fld.id!r}: an alpha-mode mask needs its image {image.id!r} bound to LoadImage nodes only",
        )
        return
    uses_mask = any(
        is_link(value) and value[0] in loaders and value[1] == 1
        for node in graph.values()
        if isinstance(node, dict) and isinstance(node.get("inputs"), dict)
        for value in node["inputs"].values()
    )
    if not uses_mask:
        report.warn(
            "spec",
            f"inputs[{i}].mode",
            f"field {fld.id!r}: no node reads the MASK output (index 1) of LoadImage {', '.join(loaders)}; "
            "the mask would have no effect",
        )


def _check_outputs(spec: WorkflowSpec, graph: dict[str, Any], catalog: Catalog, report: Report) -> None:
    for i, out in enumerate(spec.outputs):
        node = graph.get(out.node)
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            report.error("spec", f"outputs[{i}].node", f"output node {out.node!r} is not in the workflow")
            continue
        info = catalog.get(node["class_type"])
        if info is None:
            report.warn(
                "spec",
                f"outputs[{i}].node",
                f"cannot check that {node['class_type']!r} (node {out.node!r}) is an output node",
            )
        elif not info.get("output_node"):
            report.error(
                "spec",
                f"outputs[{i}].node",
                f"node {out.node!r} ({node['class_type']}) is not an output node; "
                "name a SaveImage or PreviewImage node",
            )
        else:
            _check_output_kind(i, out, node["class_type"], info, report)


def _check_output_kind(i: int, out: Any, class_type: str, info: dict[str, Any], report: Report) -> None:
    makes = output_node_kind(class_type, info)
    if makes is None or makes == out.type:
        return
    where, message = f"outputs[{i}].type", f"node {out.node!r} ({class_type}) makes {makes}, not {out.type}"
    if out.type == "image" and makes == "video":
        # A 1.0 spec could only say "image"; its frames are still collected, as a video.
        report.warn("spec", where, message + '; declare "type": "video"')
    else:
        report.error("spec", where, message + f'; declare "type": "{makes}"')


def _node_sort_key(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)
