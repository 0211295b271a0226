"""Turn a UI-format ComfyUI workflow (what the editor's *Save* writes) into an API-format prompt.

It does what ComfyUI's frontend does when it queues a prompt (``graphToPrompt``), with a node
catalogue (``/object_info``) standing in for the editor's widgets:

- ``widgets_values`` are mapped to the widget inputs of the node's class in ``input_order``,
  skipping the values of editor-only widgets: "control after generate" after seeds (and combos
  that ask for it), the upload button after file combos; a dynamic combo's value is followed by
  the values of the inputs its chosen option brings (``"resize_type.width"``);
- links are resolved through ``Reroute`` nodes, primitive nodes (their value is inlined),
  bypassed nodes (the input of the same type is wired to the consumer) and subgraphs, whose inner
  nodes are flattened with ids ``"<subgraph node id>:<inner id>"`` (nested: ``"5:12:3"``);
- muted nodes are removed, notes and groups dropped.

Anything it cannot map faithfully (a class no server has, a value that does not fit its widget, a
dangling link, a cycle) raises ``UIConversionError`` naming the node and why: never a silently
wrong prompt. Pure: no Django.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from workflows.catalog_rules import Catalog, InputKind, input_kind, literal_problem

# LiteGraph node modes (ComfyUI's "Mute" = NEVER, "Bypass" = BYPASS).
MODE_NEVER = 2
MODE_BYPASS = 4
SUBGRAPH_INPUT = -10
SUBGRAPH_OUTPUT = -20

# Nodes that live only in the editor: notes and the editor helpers of popular packs (rgthree's
# labels, bookmarks and group bypassers, whose effect is already saved in the nodes' modes).
NOTE_TYPES = frozenset(
    {
        "Note",
        "MarkdownNote",
        "Comment",
        "Label (rgthree)",
        "Bookmark (rgthree)",
        "Fast Groups Bypasser (rgthree)",
        "Fast Groups Muter (rgthree)",
        "Fast Bypasser (rgthree)",
        "Fast Muter (rgthree)",
    }
)
REROUTE_TYPES = frozenset({"Reroute", "Reroute (rgthree)"})
# KJNodes' Set/Get pair: a named wire, resolved in the editor (a GetNode reads its SetNode's input).
SET_NODE, GET_NODE = "SetNode", "GetNode"
VIRTUAL_TYPES = NOTE_TYPES | REROUTE_TYPES | {"PrimitiveNode", SET_NODE, GET_NODE}
WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "COMFY_DYNAMICCOMBO_V3"})
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
UPLOAD_KEYS = ("image_upload", "video_upload", "audio_upload", "file_upload")
# Widgets whose value the editor computes when it queues the prompt (a 3D viewport capture, a
# painted canvas, a recording): a saved file does not hold what ComfyUI would receive.
EDITOR_COMPUTED_KINDS = frozenset({"LOAD_3D", "AUDIO_RECORD", "PAINTER", "WEBCAM"})
# Widgets that hold no value for the prompt at all (a comparison viewer).
VIEW_ONLY_KINDS = frozenset({"IMAGECOMPARE"})
# The recorded catalogue (../shared/comfy) is stored with sorted keys, which loses the order of
# the inputs a dynamic-combo option brings; ComfyUI's frontend lays their widgets out in
# registration order. Where two of them could take the same value, the order is listed here
# (read off ComfyUI's node definitions). Others are placed by the catalogue's order.
OPTION_INPUT_ORDER: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("ResizeImageMaskNode", "resize_type", "scale dimensions"): ("width", "height", "crop"),
    ("ResizeImageMaskNode", "resize_type", "match size"): ("crop",),
    ("GLSLShader", "size_mode", "custom"): ("width", "height"),
    ("SaveImageAdvanced", "format", "png"): ("bit_depth", "input_color_space"),
    ("SaveImageAdvanced", "format", "exr"): ("bit_depth", "input_color_space"),
    ("DA3Render", "output", "depth"): ("normalization", "apply_sky_clip"),
    ("DA3Render", "output", "depth_colored"): ("normalization", "apply_sky_clip"),
    **{
        (cls, "sampling_mode", "on"): (
            "temperature",
            "top_k",
            "top_p",
            "min_p",
            "repetition_penalty",
            "seed",
            "presence_penalty",
        )
        for cls in ("TextGenerate", "TextGenerateLTX2Prompt")
    },
    ("CreateCameraInfo", "mode", "orbit"): ("distance", "pitch", "yaw"),
    ("RotateMesh", "mode", "quaternion"): ("qw", "qx", "qy", "qz"),
}
# Class-name prefixes of ComfyUI's paid API nodes (comfy_api_nodes), to say why a class is missing.
API_NODE_PREFIXES = (
    "Anthropic",
    "Beeble",
    "Bfl",
    "Bria",
    "ByteDance",
    "Claude",
    "Clarity",
    "ElevenLabs",
    "FishAudio",
    "Flux2Image",
    "Flux3",
    "FluxKontext",
    "FluxPro",
    "FluxErase",
    "FluxVideo",
    "FluxVTO",
    "Gemini",
    "Grok",
    "HappyHorse",
    "HeyGen",
    "Higgsfield",
    "Ideogram",
    "Kling",
    "Krea",
    "Ltx",
    "Luma",
    "Magnific",
    "Meshy",
    "Minimax",
    "MiniMax",
    "Mirelo",
    "Moonvalley",
    "OpenAI",
    "OpenRouter",
    "Pika",
    "Pixverse",
    "Quiver",
    "Recraft",
    "Rodin3D",
    "Runway",
    "Sonilo",
    "Stability",
    "Tencent",
    "Topaz",
    "Tripo",
    "Veo",
    "Vidu",
    "Wavespeed",
)
API_NODE_SUFFIXES = ("Api", "ApiNode")


class UIConversionError(ValueError):
    """The workflow cannot be converted faithfully. ``problems`` are readable lines naming the
    node and the reason; ``missing`` maps each node class no server has to what it is
    ("custom node (comfyui-kjnodes)", "paid API node", …)."""

    def __init__(self, problems: list[str], missing: dict[str, str] | None = None):
        self.problems = problems
        self.missing = missing or {}
        super().__init__("; ".join(problems))


@dataclass
class Conversion:
    """The API-format prompt, and what the conversion noticed but did not refuse."""

    prompt: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    # The inputs the author exposed on subgraph nodes (their widgets shown outside), as
    # (label, [(node id, input)…]): what a form for this workflow should probably offer.
    exposed: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    # Model files the workflow's nodes say they load, with where to get them (the editor saves
    # ``properties.models`` for that): [{"name", "directory", "url", "node"}…].
    models: list[dict[str, str]] = field(default_factory=list)


def is_ui_format(obj: Any) -> bool:
    """True when ``obj`` is an editor (UI-format) workflow: an object with a ``nodes`` array."""
    return isinstance(obj, dict) and isinstance(obj.get("nodes"), list)


def convert_ui_workflow(
    workflow: dict[str, Any], catalog: Catalog, *, available: Collection[str] | None = None
) -> Conversion:
    """Return the API-format prompt of a UI-format workflow, or raise UIConversionError.

    ``catalog`` gives each class's inputs (widget layout, types); ``available`` is the set of
    classes the GPU servers have (default: the catalogue's). A class that is available but not
    in the catalogue can only be converted if its widgets are saved by name.
    """
    if not is_ui_format(workflow):
        raise UIConversionError(["not a UI-format workflow: it has no 'nodes' array"])
    converter = _Converter(workflow, catalog, set(catalog) if available is None else set(available))
    try:
        return converter.run()
    except UIConversionError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as exc:
        # A file damaged in a way no rule above names: refuse it rather than guess (or fail).
        raise UIConversionError(
            [f"the workflow file is damaged and cannot be read ({type(exc).__name__}: {exc})"]
        ) from exc


# --- the graph as saved -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    origin_id: int
    origin_slot: int
    target_id: int
    target_slot: int
    type: str


@dataclass
class _Scope:
    """One graph level: the workflow itself or one placed instance of a subgraph."""

    nodes: dict[int, dict[str, Any]]
    links: dict[int, _Link]
    prefix: str  # prepended to inner node ids: "" at the top, "57:" inside subgraph node 57
    where: str  # for messages: "" or ' in subgraph "Name" (node 57)'
    instance: dict[str, Any] | None = None  # the subgraph node, in the parent scope
    definition: dict[str, Any] | None = None
    parent: _Scope | None = None

    def flat_id(self, node_id: Any) -> str:
        return f"{self.prefix}{node_id}"


def _read_links(raw: Any, where: str, problems: list[str]) -> dict[int, _Link]:
    links: dict[int, _Link] = {}
    if not isinstance(raw, list):
        problems.append(f"the links of the workflow{where} are not a list")
        return links
    for item in raw:
        try:
            if isinstance(item, dict):
                link = _Link(
                    int(item["origin_id"]),
                    int(item["origin_slot"]),
                    int(item["target_id"]),
                    int(item["target_slot"]),
                    str(item.get("type", "*")),
                )
                link_id = int(item["id"])
            elif isinstance(item, list) and len(item) >= 5:
                link_id = int(item[0])
                link = _Link(
                    int(item[1]), int(item[2]), int(item[3]), int(item[4]), str(item[5] if len(item) > 5 else "*")
                )
            else:
                raise ValueError
            if link.origin_slot < 0 or link.target_slot < 0:
                raise ValueError
        except (KeyError, TypeError, ValueError, OverflowError):
            problems.append(f"a link{where} is not [id, origin, slot, target, slot, type]: {str(item)[:80]}")
            continue
        links[link_id] = link
    return links


def _dicts(raw: Any) -> list[dict[str, Any]]:
    return [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []


def _read_nodes(raw: Any, where: str, problems: list[str]) -> dict[int, dict[str, Any]]:
    nodes: dict[int, dict[str, Any]] = {}
    if not isinstance(raw, list):
        problems.append(f"the nodes of the workflow{where} are not a list")
        return nodes
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            problems.append(f"a node{where} has no type: {str(item)[:80]}")
            continue
        try:
            node_id = int(item.get("id"))
        except (TypeError, ValueError):
            problems.append(f"a {item['type']} node{where} has no numeric id")
            continue
        if node_id in nodes:
            problems.append(f"two nodes{where} share the id {node_id}")
            continue
        nodes[node_id] = item
    return nodes


def _node_inputs(node: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = node.get("inputs")
    return [i for i in inputs if isinstance(i, dict)] if isinstance(inputs, list) else []


def _node_outputs(node: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = node.get("outputs")
    return [o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []


def _widget_name(item: dict[str, Any]) -> str | None:
    """The widget an input stands for (a converted widget), else None."""
    widget = item.get("widget")
    name = widget.get("name") if isinstance(widget, dict) else None
    name = name if isinstance(name, str) else item.get("name")
    return name if isinstance(name, str) and widget else None


def _link_ids(declared: dict[str, Any]) -> list[int]:
    ids = declared.get("linkIds")
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def _mode(node: dict[str, Any]) -> int:
    mode = node.get("mode", 0)
    return mode if isinstance(mode, int) else 0


# --- the widgets of a class ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Widget:
    name: str
    kind: InputKind
    control: bool = False  # a "control after generate" value follows
    control_filter: bool = False  # …and a combo filter string after it
    upload: bool = False  # an upload-button value follows
    dynamic: bool = False  # a dynamic combo: its option's inputs follow
    raw_kind: str = ""


def _spec_parts(spec: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, list) and spec:
        return spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return None, {}


def _is_widget(kind: Any, options: dict[str, Any]) -> bool:
    if options.get("forceInput"):
        return False
    if isinstance(kind, list) or kind in WIDGET_KINDS:
        return True
    # V3 custom widgets (colors, bounding boxes, curves…) declare whether they have a socket.
    return "widgetType" in options or "socketless" in options or kind in EDITOR_COMPUTED_KINDS


def _widgets_of(class_type: str, info: dict[str, Any]) -> list[_Widget]:
    """The widgets the editor shows for a class, in the order their values are saved."""
    order = info.get("input_order") or {}
    sections = info.get("input") or {}
    names: list[str] = []
    for section in ("required", "optional"):
        declared = sections.get(section) or {}
        names += [n for n in order.get(section, []) if n in declared]
        names += [n for n in declared if n not in names]
    widgets = []
    for name in names:
        spec = (sections.get("required") or {}).get(name, (sections.get("optional") or {}).get(name))
        kind, options = _spec_parts(spec)
        if not _is_widget(kind, options):
            continue
        found = input_kind(class_type, info, name)
        if found is None:
            continue
        combo = found.kind == "COMBO"
        control = options.get("control_after_generate")
        if control is None:  # the editor's old rule: seeds get a control widget by name
            control = found.kind == "INT" and name in ("seed", "noise_seed")
        widgets.append(
            _Widget(
                name=name,
                kind=found,
                control=bool(control),
                control_filter=bool(control) and combo,
                upload=combo and any(options.get(k) for k in UPLOAD_KEYS),
                dynamic=kind == "COMFY_DYNAMICCOMBO_V3",
                raw_kind=kind if isinstance(kind, str) else "COMBO",
            )
        )
    return widgets


def _option_widgets(class_type: str, parent: str, options: dict[str, Any], key: Any) -> list[tuple[str, Any]]:
    """(name, spec) of the widget inputs a dynamic combo's chosen option brings, in order."""
    for option in options.get("options") or []:
        if not isinstance(option, dict) or option.get("key") != key:
            continue
        inputs = option.get("inputs") or {}
        specs: dict[str, Any] = {}
        for section in ("required", "optional"):
            specs.update(inputs.get(section) or {})
        names = list(specs)
        wanted = OPTION_INPUT_ORDER.get((class_type, parent, str(key)))
        if wanted:
            names = [n for n in wanted if n in specs] + [n for n in names if n not in wanted]
        return [(n, specs[n]) for n in names if _is_widget(*_spec_parts(specs[n]))]
    return []


def _shape_problem(kind: InputKind, value: Any) -> str | None:
    """Why a saved value cannot belong to this widget (wrong kind of value), else None.

    Only the shape is judged here (a word where a number belongs, a number for a combo): a
    value of the right shape but out of range or not in the list is left to prompt validation,
    which explains it better.
    """
    if kind.kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return literal_problem(kind, value) or f"expects a number, got {value!r}"
        return None
    if kind.kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"expects true or false, got {value!r}"
    if kind.kind == "COMBO":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return None
        return f"expects one of its options, got {value!r}"
    if kind.kind == "STRING":
        return None if isinstance(value, (str, int, float)) else f"expects text, got {str(value)[:60]}"
    return None


# --- the conversion ----------------------------------------------------------------------------


class _Unresolved(Exception):
    """A link cannot be followed; the message says where and why."""


@dataclass(frozen=True)
class _Value:
    value: Any


@dataclass(frozen=True)
class _Ref:
    node: str
    slot: int


class _Converter:
    def __init__(self, workflow: dict[str, Any], catalog: Catalog, available: set[str]):
        self.workflow = workflow
        self.catalog = catalog
        self.available = available
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.prompt: dict[str, dict[str, Any]] = {}
        self.scopes: list[_Scope] = []
        definitions = workflow.get("definitions") if isinstance(workflow.get("definitions"), dict) else {}
        subgraphs = definitions.get("subgraphs") if isinstance(definitions.get("subgraphs"), list) else []
        self.subgraphs = {s["id"]: s for s in subgraphs if isinstance(s, dict) and isinstance(s.get("id"), str)}

    def run(self) -> Conversion:
        top = _Scope(
            nodes=_read_nodes(self.workflow["nodes"], "", self.problems),
            links=_read_links(self.workflow.get("links", []), "", self.problems),
            prefix="",
            where="",
        )
        if self.problems:
            raise UIConversionError(self.problems)
        scopes = self.scopes = self._scopes(top)
        missing = self._missing_classes(scopes)
        if missing:
            listed = ", ".join(f"{cls} ({what})" for cls, what in sorted(missing.items()))
            self.problems.insert(0, f"the workflow needs node classes that no GPU server has: {listed}")
        if self.problems:
            raise UIConversionError(self.problems, missing)
        for scope in scopes:
            for node_id, node in scope.nodes.items():
                if self._runs(node) and not self._virtual_or_subgraph(node):
                    if self._view_only(node["type"]):
                        self.warnings.append(
                            f"node {scope.flat_id(node_id)} ({node['type']}){scope.where} only shows pictures in the "
                            "ComfyUI editor; it was left out"
                        )
                        continue
                    self._emit(scope, node_id, node)
        if not self.problems:
            self._check_cycles()
        if self.problems:
            raise UIConversionError(self.problems)
        if not self.prompt:
            raise UIConversionError(["the workflow has no node that runs (all are notes, muted or bypassed)"])
        self._prune()
        return Conversion(self.prompt, self.warnings, self._exposed(), self._models())

    def _models(self) -> list[dict[str, str]]:
        found: dict[tuple[str, str], dict[str, str]] = {}
        for scope in self.scopes:
            for node_id, node in scope.nodes.items():
                properties = node.get("properties")
                if scope.flat_id(node_id) not in self.prompt or not isinstance(properties, dict):
                    continue
                for model in _dicts(properties.get("models")):
                    name, directory, url = model.get("name"), model.get("directory"), model.get("url")
                    if isinstance(name, str) and name and isinstance(directory, str):
                        found.setdefault(
                            (directory, name),
                            {
                                "name": name,
                                "directory": directory,
                                "url": url if isinstance(url, str) and url.startswith("https://") else "",
                                "node": scope.flat_id(node_id),
                            },
                        )
        return list(found.values())

    def _exposed(self) -> list[tuple[str, list[tuple[str, str]]]]:
        found = self._shared_by_primitives()
        for scope in self.scopes:
            if scope.parent is None or scope.parent.parent is not None:
                continue  # only the subgraph nodes of the workflow itself face its user
            outer = {i["name"]: i for i in _node_inputs(scope.instance or {}) if isinstance(i.get("name"), str)}
            for declared in _dicts((scope.definition or {}).get("inputs")):
                name = declared.get("name") if isinstance(declared.get("name"), str) else ""
                if (outer.get(name) or {}).get("link") is not None:
                    continue
                targets = []
                for link_id in _link_ids(declared):
                    link = scope.links.get(link_id)
                    target = scope.nodes.get(link.target_id) if link else None
                    items = _node_inputs(target) if target else []
                    if link and link.target_slot < len(items) and items[link.target_slot].get("widget"):
                        widget = _widget_name(items[link.target_slot])
                        if widget and scope.flat_id(link.target_id) in self.prompt:
                            targets.append((scope.flat_id(link.target_id), widget))
                label = (outer.get(name) or {}).get("label") or declared.get("label")
                if targets:
                    found.append((str(label or name), targets))
            # Newer editors also promote an inner widget directly ("proxyWidgets": [[node, widget]…]).
            properties = (scope.instance or {}).get("properties")
            proxied = properties.get("proxyWidgets") if isinstance(properties, dict) else None
            taken = {t for _, targets in found for t in targets}
            for item in proxied if isinstance(proxied, list) else []:
                if not (isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)):
                    continue
                target = (scope.flat_id(item[0]), item[1])
                if target not in taken and item[1] in self.prompt.get(target[0], {}).get("inputs", {}):
                    taken.add(target)
                    found.append((item[1], [target]))
        return found

    def _shared_by_primitives(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The inputs each primitive node feeds (one value the author shares between them)."""
        found = []
        for scope in self.scopes:
            consumers: dict[int, list[tuple[str, str]]] = {}
            for link in scope.links.values():
                source = scope.nodes.get(link.origin_id)
                target = scope.nodes.get(link.target_id)
                if source is None or target is None or source["type"] != "PrimitiveNode":
                    continue
                items = _node_inputs(target)
                name = items[link.target_slot].get("name") if link.target_slot < len(items) else None
                if isinstance(name, str) and name in self.prompt.get(scope.flat_id(link.target_id), {}).get(
                    "inputs", {}
                ):
                    consumers.setdefault(link.origin_id, []).append((scope.flat_id(link.target_id), name))
            for origin, targets in consumers.items():
                title = scope.nodes[origin].get("title")
                label = title if isinstance(title, str) and title.strip() and title != "Primitive" else targets[0][1]
                found.append((label, targets))
        return found

    def _prune(self) -> None:
        """Leave out nodes that feed no output node: ComfyUI would not run them, and a form field
        bound to one would change nothing."""
        outputs = [n for n, e in self.prompt.items() if (self.catalog.get(e["class_type"]) or {}).get("output_node")]
        outputs += [n for n, e in self.prompt.items() if e["class_type"] not in self.catalog]  # unknown: keep
        if not outputs:
            raise UIConversionError(["the workflow has no output node (SaveImage, PreviewImage, SaveVideo…) that runs"])
        needed, stack = set(), list(outputs)
        while stack:
            node_id = stack.pop()
            if node_id not in needed:
                needed.add(node_id)
                stack += self._deps(node_id)
        dropped = [n for n in self.prompt if n not in needed]
        for node_id in dropped:
            del self.prompt[node_id]
        if dropped:
            shown = ", ".join(dropped[:8]) + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else "")
            self.warnings.append(f"left out {len(dropped)} node(s) that feed no output node: {shown}")

    # scopes -----------------------------------------------------------------------------------

    def _scopes(self, top: _Scope) -> list[_Scope]:
        """The top scope and every subgraph instance that runs, depth first."""
        scopes = [top]
        stack: list[tuple[_Scope, tuple[str, ...]]] = [(top, ())]
        while stack:
            scope, chain = stack.pop()
            for node_id, node in scope.nodes.items():
                definition = self.subgraphs.get(node["type"])
                if definition is None or not self._runs(node):
                    continue
                if node["type"] in chain:
                    self.problems.append(
                        f"node {scope.flat_id(node_id)}{scope.where}: subgraph {definition.get('name')!r} contains itself"
                    )
                    continue
                problems: list[str] = []
                name = definition.get("name") or node["type"]
                where = f' in subgraph "{name}" (node {scope.flat_id(node_id)})'
                inner = _Scope(
                    nodes=_read_nodes(definition.get("nodes") or [], where, problems),
                    links=_read_links(definition.get("links") or [], where, problems),
                    prefix=f"{scope.flat_id(node_id)}:",
                    where=where,
                    instance=node,
                    definition=definition,
                    parent=scope,
                )
                self.problems += problems
                scopes.append(inner)
                stack.append((inner, (*chain, node["type"])))
        if self.problems:
            raise UIConversionError(self.problems)
        return scopes

    def _runs(self, node: dict[str, Any]) -> bool:
        return _mode(node) not in (MODE_NEVER, MODE_BYPASS)

    def _view_only(self, cls: str) -> bool:
        """An editor viewer (ImageCompare): an output node whose widget holds nothing to send."""
        info = self.catalog.get(cls) or {}
        required = (info.get("input") or {}).get("required") or {}
        kinds = [_spec_parts(spec)[0] for spec in required.values()]
        return any(isinstance(k, str) and k in VIEW_ONLY_KINDS for k in kinds) and not info.get("output")

    def _virtual_or_subgraph(self, node: dict[str, Any]) -> bool:
        return node["type"] in VIRTUAL_TYPES or node["type"] in self.subgraphs

    def _missing_classes(self, scopes: list[_Scope]) -> dict[str, str]:
        missing: dict[str, str] = {}
        for scope in scopes:
            for node in scope.nodes.values():
                cls = node["type"]
                if not self._runs(node) or self._virtual_or_subgraph(node):
                    continue
                if cls.startswith(("workflow>", "workflow/")):
                    self.problems.append(
                        f"node {scope.flat_id(node['id'])} ({cls}){scope.where} is a group node, the editor's older "
                        "way of grouping; in ComfyUI, convert it to nodes (right-click → Convert to nodes) or to a "
                        "subgraph, save, and upload again"
                    )
                elif cls not in self.available:
                    missing.setdefault(cls, _what_is(cls, node))
                elif cls not in self.catalog and not isinstance(node.get("widgets_values"), dict):
                    if node.get("widgets_values"):
                        missing.setdefault(
                            cls,
                            "a GPU server has it, but its widgets are unknown here: convert with that node's catalogue",
                        )
        return missing

    # one node ---------------------------------------------------------------------------------

    def _emit(self, scope: _Scope, node_id: int, node: dict[str, Any]) -> None:
        cls = node["type"]
        flat = scope.flat_id(node_id)
        label = f"node {flat} ({cls}){scope.where}"
        info = self.catalog.get(cls)
        inputs: dict[str, Any] = {}
        try:
            inputs.update(self._widget_inputs(cls, info, node, label))
        except _Unresolved as exc:
            self.problems.append(str(exc))
            return
        for slot, item in enumerate(_node_inputs(node)):
            name = item.get("name")
            if not isinstance(name, str) or item.get("link") is None:
                continue
            try:
                resolved = self._resolve_input(scope, node, slot, set())
            except _Unresolved as exc:
                self.problems.append(f"{label}: input {name!r}: {exc}")
                continue
            if isinstance(resolved, _Ref):
                inputs[name] = [resolved.node, resolved.slot]
            elif isinstance(resolved, _Value):
                value = resolved.value
                inputs[name] = {"__value__": value} if isinstance(value, list) else value
            # None: nothing reaches it (a muted source…); a widget keeps its own value
        title = node.get("title") if isinstance(node.get("title"), str) else None
        display = (info or {}).get("display_name") or cls
        self.prompt[flat] = {"inputs": inputs, "class_type": cls, "_meta": {"title": title or display}}

    def _widget_inputs(
        self, cls: str, info: dict[str, Any] | None, node: dict[str, Any], label: str, *, quiet: bool = False
    ) -> dict:
        """The node's widget values by input name (``quiet``: a second reading, warn nothing)."""
        warnings = len(self.warnings)
        try:
            return self._read_widgets(cls, info, node, label)
        finally:
            if quiet:
                del self.warnings[warnings:]

    def _read_widgets(self, cls: str, info: dict[str, Any] | None, node: dict[str, Any], label: str) -> dict:
        values = node.get("widgets_values")
        if values is None or values == []:
            values = []
        if isinstance(values, dict):  # some nodes save their widgets by name
            known = {w.name for w in _widgets_of(cls, info)} if info else None
            return {
                k: ({"__value__": v} if isinstance(v, list) else v)
                for k, v in values.items()
                if isinstance(k, str) and (known is None or k in known or k.split(".")[0] in known)
            }
        if not isinstance(values, list):
            raise _Unresolved(f"{label}: widgets_values is neither a list nor an object")
        if info is None:
            if values:
                raise _Unresolved(f"{label}: no catalogue describes this class, so its widget values cannot be named")
            return {}
        out: dict[str, Any] = {}
        pos = 0
        widgets = _widgets_of(cls, info)
        for widget in widgets:
            if widget.raw_kind in VIEW_ONLY_KINDS:
                continue
            if pos >= len(values):
                self._fill_default(cls, info, widget, out, label)
                continue
            value = values[pos]
            pos += 1
            if widget.raw_kind in EDITOR_COMPUTED_KINDS:
                raise _Unresolved(
                    f"{label}: widget {widget.name!r} ({widget.raw_kind}) is computed by the ComfyUI editor when it "
                    "queues the prompt; a saved workflow does not hold it"
                )
            problem = _shape_problem(widget.kind, value)
            if problem:
                raise _Unresolved(
                    f"{label}: the saved value for widget {widget.name!r} does not fit ({problem}); the node's saved "
                    "widgets do not match this ComfyUI's definition of the class (saved by another version?)"
                )
            out[widget.name] = {"__value__": value} if isinstance(value, list) else value
            if widget.control and pos < len(values) and isinstance(values[pos], str) and values[pos] in CONTROL_VALUES:
                pos += 1
                if widget.control_filter and pos < len(values) and isinstance(values[pos], str):
                    pos += 1
            if widget.upload and pos < len(values) and (values[pos] is None or isinstance(values[pos], str)):
                if not (isinstance(values[pos], str) and _fits_next(widgets, widget, values[pos])):
                    pos += 1
            if widget.dynamic:
                pos = self._dynamic_values(cls, widget.name, widget.kind.options, value, values, pos, out, label)
        rest = [v for v in values[pos:] if v not in (None, "")]
        if rest:
            self.warnings.append(
                f"{label}: {len(rest)} saved widget value(s) beyond this ComfyUI's inputs of {cls} were ignored "
                f"({', '.join(repr(v)[:30] for v in rest[:4])}); it was saved by another version"
            )
        return out

    def _dynamic_values(
        self, cls: str, name: str, options: dict, key: Any, values: list, pos: int, out: dict, label: str
    ) -> int:
        """Read the values of the inputs a dynamic combo's chosen option brings (``name.sub``),
        recursively when one of them is a dynamic combo too. Returns the next position."""
        keys = [o.get("key") for o in options.get("options") or [] if isinstance(o, dict)]
        if key not in keys:
            raise _Unresolved(f"{label}: {key!r} is not an option of {name!r} (options: {', '.join(map(repr, keys))})")
        for sub, spec in _option_widgets(cls, name.split(".")[0], options, key):
            kind_name, sub_options = _spec_parts(spec)
            full = f"{name}.{sub}"
            sub_kind = input_kind(cls, {"input": {"required": {full: spec}}}, full)
            if sub_kind is None:
                continue
            if pos >= len(values):
                value = sub_options.get("default", sub_kind.choices[0] if sub_kind.choices else None)
                if value is None:
                    raise _Unresolved(f"{label}: no saved value for {full!r} and no default")
                self.warnings.append(f"{label}: no saved value for {full!r}; its default {value!r} is used")
            else:
                value = values[pos]
                pos += 1
                problem = _shape_problem(sub_kind, value)
                if problem:
                    raise _Unresolved(
                        f"{label}: the saved value for {full!r} does not fit ({problem}); the node's saved widgets "
                        "do not match this ComfyUI's definition of the class (saved by another version?)"
                    )
            out[full] = {"__value__": value} if isinstance(value, list) else value
            if kind_name == "COMFY_DYNAMICCOMBO_V3":
                pos = self._dynamic_values(cls, full, sub_options, value, values, pos, out, label)
        return pos

    def _fill_default(self, cls: str, info: dict, widget: _Widget, out: dict, label: str) -> None:
        default = widget.kind.options.get("default")
        if default is None and widget.kind.kind == "COMBO" and widget.kind.choices:
            default = widget.kind.choices[0]
        if default is None:
            raise _Unresolved(f"{label}: no saved value for widget {widget.name!r} and the catalogue gives no default")
        out[widget.name] = default
        self.warnings.append(
            f"{label}: no saved value for {widget.name!r} (saved by an older version?); its default {default!r} is used"
        )

    # links ------------------------------------------------------------------------------------

    def _resolve_input(self, scope: _Scope, node: dict[str, Any], slot: int, seen: set) -> _Ref | _Value | None:
        """Follow what feeds input ``slot`` of ``node`` to a real node's output or a value."""
        key = (scope.prefix, node.get("id"), "in", slot)
        if key in seen:
            raise _Unresolved("its link goes round in a loop of reroute or bypassed nodes")
        seen.add(key)
        items = _node_inputs(node)
        if slot >= len(items):
            return None
        link_id = items[slot].get("link")
        if link_id is None:
            return None
        link = scope.links.get(link_id) if isinstance(link_id, int) and not isinstance(link_id, bool) else None
        if link is None:
            raise _Unresolved(f"link {link_id} is not in the workflow{scope.where} (a dangling link)")
        return self._resolve_output(scope, link.origin_id, link.origin_slot, items[slot].get("type"), seen)

    def _resolve_output(self, scope: _Scope, origin: int, slot: int, want: Any, seen: set) -> _Ref | _Value | None:
        if origin == SUBGRAPH_INPUT and scope.instance is not None:
            return self._resolve_subgraph_input(scope, slot, seen)
        node = scope.nodes.get(origin)
        if node is None:
            raise _Unresolved(
                f"it is linked to node {scope.flat_id(origin)}, which is not in the workflow{scope.where}"
            )
        cls = node["type"]
        label = f"node {scope.flat_id(origin)} ({cls}){scope.where}"
        if _mode(node) == MODE_NEVER:
            return None
        if _mode(node) == MODE_BYPASS:
            index = _bypass_input(node, slot, want)
            return None if index is None else self._resolve_input(scope, node, index, seen)
        if cls in REROUTE_TYPES or cls == SET_NODE:
            return self._resolve_input(scope, node, 0, seen)
        if cls == GET_NODE:
            return self._resolve_get_node(scope, node, label, seen)
        if cls == "PrimitiveNode":
            values = node.get("widgets_values")
            if not isinstance(values, list) or not values:
                raise _Unresolved(f"it comes from primitive {label}, which holds no value")
            return _Value(values[0])
        if cls in NOTE_TYPES:
            raise _Unresolved(f"it is linked to {label}, a note")
        if cls in self.subgraphs:
            return self._resolve_subgraph_output(scope, origin, node, slot, seen)
        outputs = self.catalog.get(cls, {}).get("output")
        if isinstance(outputs, list) and slot >= len(outputs):
            raise _Unresolved(f"it is linked to output {slot} of {label}, which has only {len(outputs)} output(s)")
        return _Ref(scope.flat_id(origin), slot)

    def _resolve_get_node(self, scope: _Scope, node: dict[str, Any], label: str, seen: set) -> _Ref | _Value | None:
        values = node.get("widgets_values")
        name = values[0] if isinstance(values, list) and values else None
        setters = [
            n
            for n in scope.nodes.values()
            if n["type"] == SET_NODE and isinstance(n.get("widgets_values"), list) and n["widgets_values"][:1] == [name]
        ]
        if not isinstance(name, str) or len(setters) != 1:
            found = "none" if not setters else f"{len(setters)}"
            raise _Unresolved(f"it comes from {label}, which reads the wire {name!r}, set by {found} SetNode(s)")
        return self._resolve_input(scope, setters[0], 0, seen)

    def _resolve_subgraph_input(self, scope: _Scope, slot: int, seen: set) -> _Ref | _Value | None:
        """An inner link from the subgraph's input node: follow the instance's input outward."""
        definition, instance, parent = scope.definition or {}, scope.instance or {}, scope.parent
        declared = _dicts(definition.get("inputs"))
        if slot >= len(declared) or parent is None:
            raise _Unresolved(f"it reads input {slot} of the subgraph{scope.where}, which has no such input")
        name = declared[slot].get("name")
        outer = _node_inputs(instance)
        index = next((i for i, item in enumerate(outer) if item.get("name") == name), None)
        if index is not None and outer[index].get("link") is not None:
            return self._resolve_input(parent, instance, index, seen)
        values = instance.get("widgets_values")
        if isinstance(values, list) and values:  # the subgraph node's own widgets, one per widget input
            widget_inputs = [i for i, item in enumerate(declared) if self._feeds_widget(scope, item)]
            if slot in widget_inputs and widget_inputs.index(slot) < len(values):
                return _Value(values[widget_inputs.index(slot)])
        return self._promoted_value(scope, declared[slot])

    def _promoted_value(self, scope: _Scope, declared: dict[str, Any]) -> _Value | None:
        """The value of the inner widget a subgraph input promotes (the editor shows it on the
        subgraph node and gives it to every inner input fed by that subgraph input)."""
        properties = (scope.instance or {}).get("properties")
        proxied = properties.get("proxyWidgets") if isinstance(properties, dict) else None
        proxied = [p for p in proxied if isinstance(p, list)] if isinstance(proxied, list) else []
        targets = []
        for link_id in _link_ids(declared):
            link = scope.links.get(link_id)
            target = scope.nodes.get(link.target_id) if link else None
            items = _node_inputs(target) if target else []
            if link and link.target_slot < len(items) and items[link.target_slot].get("widget"):
                name = _widget_name(items[link.target_slot])
                targets.append((link.target_id, target, name))
        targets.sort(key=lambda t: [str(t[0]), t[2]] not in [list(map(str, p[:2])) for p in proxied if len(p) >= 2])
        for target_id, target, name in targets:
            info = self.catalog.get(target["type"])
            if info is None or not self._runs(target):
                continue
            label = f"node {scope.flat_id(target_id)} ({target['type']}){scope.where}"
            widgets = self._widget_inputs(target["type"], info, target, label, quiet=True)
            if name in widgets:
                return _Value(widgets[name])
        return None  # an inner widget keeps its own value

    def _feeds_widget(self, scope: _Scope, declared: dict[str, Any]) -> bool:
        for link_id in _link_ids(declared):
            link = scope.links.get(link_id)
            target = scope.nodes.get(link.target_id) if link else None
            items = _node_inputs(target) if target else []
            if link and link.target_slot < len(items) and items[link.target_slot].get("widget"):
                return True
        return False

    def _resolve_subgraph_output(
        self, scope: _Scope, origin: int, node: dict[str, Any], slot: int, seen: set
    ) -> _Ref | _Value | None:
        """A link from a subgraph node's output: follow it inside, to what feeds that output."""
        inner = next((s for s in self.scopes if s.instance is node), None)
        if inner is None:
            raise _Unresolved(f"subgraph node {scope.flat_id(origin)} could not be read")
        for link in inner.links.values():
            if link.target_id == SUBGRAPH_OUTPUT and link.target_slot == slot:
                return self._resolve_output(inner, link.origin_id, link.origin_slot, link.type, seen)
        declared = _dicts((inner.definition or {}).get("outputs"))
        name = declared[slot].get("name") if slot < len(declared) else slot
        ids = declared[slot].get("linkIds") if slot < len(declared) else None
        if ids:
            raise _Unresolved(
                f"output {name!r} of subgraph node {scope.flat_id(origin)} names link {ids[0]}, which is not in the "
                "subgraph (a dangling link)"
            )
        raise _Unresolved(f"output {name!r} of subgraph node {scope.flat_id(origin)} is not connected inside it")

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}
        for start in self.prompt:
            stack = [(start, iter(self._deps(start)))]
            if state.get(start):
                continue
            state[start] = 1
            while stack:
                node_id, deps = stack[-1]
                dep = next(deps, None)
                if dep is None:
                    state[node_id] = 2
                    stack.pop()
                elif state.get(dep) == 1:
                    path = [n for n, _ in stack]
                    cycle = [*path[path.index(dep) :], dep]
                    shown = " -> ".join(f"{n} ({self.prompt[n]['class_type']})" for n in cycle)
                    self.problems.append(f"the graph has a cycle: {shown}")
                    return
                elif not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, iter(self._deps(dep))))

    def _deps(self, node_id: str) -> list[str]:
        return [
            v[0]
            for v in self.prompt[node_id]["inputs"].values()
            if isinstance(v, list) and len(v) == 2 and v[0] in self.prompt
        ]


def _fits_next(widgets: list[_Widget], current: _Widget, value: str) -> bool:
    """True when an upload-button slot actually holds the next widget's value (older saves)."""
    index = widgets.index(current)
    if index + 1 >= len(widgets):
        return False
    following = widgets[index + 1].kind
    return following.kind == "COMBO" and value in (following.choices or [])


def _bypass_input(node: dict[str, Any], slot: int, want: Any) -> int | None:
    """The input a bypassed node passes to output ``slot``, as ComfyUI's frontend picks it."""
    inputs = _node_inputs(node)
    outputs = _node_outputs(node)
    out_type = outputs[slot].get("type") if slot < len(outputs) else None
    if want in ("*", "", None):
        return slot if slot < len(inputs) else (0 if inputs else None)
    if slot < len(inputs) and _types_match(inputs[slot].get("type"), out_type):
        return slot
    return next((i for i, item in enumerate(inputs) if item.get("type") == want), None)


def _types_match(a: Any, b: Any) -> bool:
    if a in ("*", "", None) or b in ("*", "", None):
        return True
    return bool({t.strip() for t in str(a).split(",")} & {t.strip() for t in str(b).split(",")})


def _what_is(cls: str, node: dict[str, Any]) -> str:
    """Say what a missing class probably is, from its saved properties and its name."""
    properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
    pack = properties.get("cnr_id") or properties.get("aux_id")
    if isinstance(pack, str) and pack and pack != "comfy-core":
        return f"custom node from {pack}"
    if cls.startswith(API_NODE_PREFIXES) or cls.endswith(API_NODE_SUFFIXES):
        return "paid API node"
    if pack == "comfy-core":
        return "built into a newer ComfyUI"
    if re.search(r"[^A-Za-z0-9_]", cls):
        return "custom node"
    return "custom node or a newer ComfyUI"


def workflow_title(workflow: dict[str, Any]) -> str | None:
    """A name for the workflow: its only subgraph node's subgraph name (templates wrap their
    work in one, "Text to Image (Z-Image-Turbo)"), else None."""
    definitions = workflow.get("definitions") if isinstance(workflow.get("definitions"), dict) else {}
    names = {s.get("id"): s.get("name") for s in _dicts(definitions.get("subgraphs"))}
    used = [
        names[n.get("type")]
        for n in _dicts(workflow.get("nodes"))
        if isinstance(n.get("type"), str) and n.get("type") in names and _mode(n) not in (MODE_NEVER, MODE_BYPASS)
    ]
    return used[0].strip() if len(used) == 1 and isinstance(used[0], str) and used[0].strip() else None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_EMBEDDED_BYTES = 20 * 1024 * 1024


def workflow_from_png(data: bytes) -> bytes | None:
    """The workflow a PNG saved by ComfyUI carries in its text chunks, or None.

    ComfyUI writes ``workflow`` (the UI format) and ``prompt`` (the API format) into every image it
    saves; the editor's format is preferred, as it keeps subgraphs and titles. Only the text
    chunks are read: the image itself is never decoded.
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    found: dict[str, bytes] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND" or len(body) < length:
            break
        if kind == b"tEXt" and b"\0" in body:
            key, text = body.split(b"\0", 1)
            found.setdefault(key.decode("latin-1"), text.decode("latin-1").encode("utf-8"))
        elif kind == b"zTXt" and b"\0" in body:
            key, rest = body.split(b"\0", 1)
            try:
                text = zlib.decompressobj().decompress(rest[1:], MAX_EMBEDDED_BYTES)
            except zlib.error:
                continue
            found.setdefault(key.decode("latin-1"), text.decode("latin-1").encode("utf-8"))
        elif kind == b"iTXt" and b"\0" in body:
            key, rest = body.split(b"\0", 1)
            if len(rest) < 2:
                continue
            compressed, rest = rest[0], rest[2:]
            parts = rest.split(b"\0", 2)  # language, translated keyword, text
            if len(parts) < 3:
                continue
            text = parts[2]
            if compressed:
                inflater = zlib.decompressobj()
                try:
                    text = inflater.decompress(text, MAX_EMBEDDED_BYTES)
                except zlib.error:
                    continue
            found.setdefault(key.decode("latin-1"), text)
    return found.get("workflow") or found.get("prompt")
