"""Model files on GPU nodes: what a node holds, which node inputs name a model file, which files
a prompt needs and which nodes can run it. Pure: no Django, no I/O.

A node's inventory is ``{folder: [file, …]}`` as ``GET /models`` and ``GET /models/{folder}``
answer (names relative to the folder, sub-folders with "/"). A model file is written
``"<folder>/<name>"`` (a *key*: folder names have no "/", so the first one splits it).

Which inputs take a model file is found generically, not from a list of known loaders: an
input of ``/object_info`` whose combo options are drawn from a folder's files (or list all of
them, plus built-in entries such as VAELoader's "pixel_space") takes that folder's files. A
folder that is empty on every node cannot be recognised this way; a spec field's
``choices_from`` names the folder of the inputs it binds, which covers that case.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nodes.comfy.catalog import combo_options, input_spec

# The model folders of ComfyUI 0.33 (GET /models, recorded). Custom node packs add their own,
# which the farm's inventories then contain too.
MODEL_FOLDERS = (
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "datasets",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
    "detection",
)
# Not model files: custom_nodes lists every file of every installed node pack.
SKIPPED_FOLDERS = frozenset({"custom_nodes"})

Inventory = dict[str, list[str]]  # {folder: [file name, …]}
# {class_type: {input name: {"folder": folder, "builtin": [options that are not files]}}}
ModelInputs = dict[str, dict[str, dict[str, Any]]]


def key(folder: str, name: str) -> str:
    return f"{folder}/{name}"


def split_key(model_key: str) -> tuple[str, str]:
    folder, _, name = model_key.partition("/")
    return folder, name


def inventory_keys(inventory: Mapping[str, Iterable[str]] | None) -> frozenset[str]:
    return frozenset(key(folder, name) for folder, names in (inventory or {}).items() for name in names)


def clean_inventory(folders: Any, files_of: Mapping[str, Any]) -> Inventory:
    """Build an inventory from ``GET /models`` (a list of folder names) and each folder's
    answer; anything that is not a list of strings is dropped, names are kept sorted."""
    out: Inventory = {}
    for folder in folders if isinstance(folders, list) else []:
        if not isinstance(folder, str) or folder in SKIPPED_FOLDERS or "/" in folder:
            continue
        names = files_of.get(folder)
        if isinstance(names, list):
            out[folder] = sorted({n for n in names if isinstance(n, str) and n})
    return out


def model_inputs(object_info: Mapping[str, Any], inventory: Mapping[str, list[str]]) -> ModelInputs:
    """Which inputs of ``object_info`` take a file of which folder, on one node.

    An input is a model-file input of folder F when its combo options (either recorded form:
    ``[[…], {…}]`` or ``["COMBO", {"options": […]}]``) are all files of F, or include every file
    of a non-empty F (then the other options are built-in entries, kept in ``builtin``). When
    several folders fit, the one sharing the most names wins."""
    files = {folder: set(names) for folder, names in inventory.items() if names}
    if not files:
        return {}
    out: ModelInputs = {}
    for class_type, info in object_info.items():
        if not isinstance(info, dict) or not isinstance(info.get("input"), dict):
            continue
        for section in ("required", "optional"):
            inputs = info["input"].get(section)
            if not isinstance(inputs, dict):
                continue
            for name in inputs:
                found = input_spec(info, name)
                if found is None:
                    continue
                options = combo_options(found[1], found[2])
                if not options or not all(isinstance(o, str) for o in options):
                    continue
                folder = _folder_of(set(options), files)
                if folder is not None:
                    builtin = sorted(set(options) - files[folder])
                    out.setdefault(class_type, {})[name] = {"folder": folder, "builtin": builtin}
    return out


def _folder_of(options: set[str], files: dict[str, set[str]]) -> str | None:
    best, best_shared = None, 0
    for folder, names in sorted(files.items()):
        shared = len(options & names)
        if shared and (options <= names or names <= options) and shared > best_shared:
            best, best_shared = folder, shared
    return best


def merge_model_inputs(maps: Iterable[ModelInputs]) -> ModelInputs:
    """The farm's view: the union of its nodes' maps (a folder empty on one node is read from
    another). Built-in entries are those every node that lists the input calls built-in."""
    out: ModelInputs = {}
    for one in maps:
        for class_type, inputs in (one or {}).items():
            for name, entry in inputs.items():
                mine = out.setdefault(class_type, {}).get(name)
                if mine is None:
                    out[class_type][name] = {"folder": entry["folder"], "builtin": list(entry.get("builtin", []))}
                elif mine["folder"] == entry["folder"]:
                    mine["builtin"] = sorted(set(mine["builtin"]) & set(entry.get("builtin", [])))
    return out


@dataclass(frozen=True)
class Need:
    """One model file a prompt names, and where: node id and input name in the prompt."""

    key: str
    node: str
    input: str


def prompt_needs(
    prompt: Mapping[str, Any], farm_inputs: ModelInputs, declared: Mapping[tuple[str, str], str] | None = None
) -> list[Need]:
    """The model files a built prompt names: the string values of its model-file inputs.

    ``declared``: ``{(node id, input): folder}`` that the workflow's spec states (its
    ``choices_from`` fields), used where the farm's object_info cannot tell. Sorted by key."""
    declared = declared or {}
    needs: dict[str, Need] = {}
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        known = farm_inputs.get(node.get("class_type"), {})
        for name, value in node["inputs"].items():
            if not isinstance(value, str) or not value:
                continue
            entry = known.get(name)
            folder = declared.get((str(node_id), name)) or (entry["folder"] if entry else None)
            if folder is None or (entry and value in entry.get("builtin", ())):
                continue
            k = key(folder, value)
            needs.setdefault(k, Need(k, str(node_id), name))
    return sorted(needs.values(), key=lambda n: n.key)


def matches(name: str, pattern: str | None) -> bool:
    """A spec's ``match`` glob ("sdxl/*"), case-sensitive like file names on the GPU servers."""
    return pattern is None or fnmatch.fnmatchcase(name, pattern)


@dataclass
class NodeView:
    """What routing reads of one node."""

    pk: int
    name: str
    online: bool
    class_types: frozenset[str]
    models: frozenset[str]  # keys
    free: bool = True  # has a free slot now
    capacity: int = 1  # slots for our prompts: max_queue less the prompts others put there
    held: frozenset[str] = field(default_factory=frozenset)  # keys of the last prompt sent

    def has(self, classes: Iterable[str], files: Iterable[str]) -> bool:
        return set(classes) <= self.class_types and set(files) <= self.models


def able(nodes: Iterable[NodeView], classes: Iterable[str], files: Iterable[str]) -> list[NodeView]:
    classes, files = frozenset(classes), frozenset(files)
    return [n for n in nodes if n.has(classes, files)]


# Why a queued job waits (codes; jobs.presenters words them in the user's language).
NO_NODE_ONLINE = "no_node_online"
MISSING_CLASSES = "missing_classes"
MISSING_MODEL = "missing_model"
ALL_BUSY = "all_busy"


def waiting_reason(nodes: Iterable[NodeView], classes: Iterable[str], files: Iterable[str]) -> tuple[str, list[str]]:
    """Why a job needing ``classes`` and ``files`` cannot start now: (code, what is missing),
    or ("", []) when an able online node has a free slot (the job only waits its turn)."""
    online = [n for n in nodes if n.online]
    if not online:
        return NO_NODE_ONLINE, []
    classes, files = frozenset(classes), frozenset(files)
    with_classes = [n for n in online if classes <= n.class_types]
    if not with_classes:
        best = min(online, key=lambda n: (len(classes - n.class_types), n.pk))
        return MISSING_CLASSES, sorted(classes - best.class_types)
    fitting = [n for n in with_classes if files <= n.models]
    if not fitting:
        best = min(with_classes, key=lambda n: (len(files - n.models), n.pk))
        return MISSING_MODEL, sorted(files - best.models)
    if not any(n.free for n in fitting):
        return ALL_BUSY, []
    return "", []


def refused_files(node_errors: Mapping[str, Any], wanted: Iterable[str]) -> list[str]:
    """The model files among ``wanted`` (keys) that a node refused as ``value_not_in_list``: it
    no longer has them (its inventory is out of date)."""
    names = {split_key(k)[1]: k for k in wanted}
    out = []
    for entry in (node_errors or {}).values():
        for error in (entry or {}).get("errors", []) if isinstance(entry, dict) else []:
            if isinstance(error, dict) and error.get("type") == "value_not_in_list":
                value = (error.get("extra_info") or {}).get("received_value")
                if isinstance(value, str) and value in names:
                    out.append(names[value])
    return sorted(set(out))
