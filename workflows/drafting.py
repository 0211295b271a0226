"""Propose a Workflow Spec for an API-format graph, so an admin starts from a working draft.

``draft_spec(graph)`` recognizes the inputs people usually expose (prompts, sampler settings,
image size, uploaded images and masks, model file names) and returns a spec dict that passes
``validate_upload`` with the same graph. The admin then edits labels, limits and choices.
Pure: no Django.
"""

from __future__ import annotations

import math
import re
from typing import Any

from nodes.comfy.catalog import object_info
from workflows.catalog_rules import OUTPUT_NODE_KINDS, Catalog, input_kind, is_link, output_node_kind

SAMPLERS = ("KSampler", "KSamplerAdvanced")
SEED_INPUTS = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed", "RandomNoise": "noise_seed"}
# Conditioning nodes the prompt tracer walks through: class -> {output index: input to follow}.
CONDITIONING_PASS = {
    "ControlNetApplyAdvanced": {0: "positive", 1: "negative"},
    "InpaintModelConditioning": {0: "positive", 1: "negative"},
}
LOADERS = {
    "CheckpointLoaderSimple": ("ckpt_name", "checkpoint", "Model"),
    "LoraLoader": ("lora_name", "lora", "LoRA"),
    "ControlNetLoader": ("control_net_name", "controlnet", "ControlNet model"),
    "UpscaleModelLoader": ("model_name", "upscale_model", "Upscaling model"),
    # Newer workflows (FLUX, Qwen, Wan…) load the parts of a model separately.
    "UNETLoader": ("unet_name", "diffusion_model", "Diffusion model"),
    "CLIPLoader": ("clip_name", "text_encoder", "Text encoder"),
    "VAELoader": ("vae_name", "vae", "VAE"),
    "LoraLoaderModelOnly": ("lora_name", "lora", "LoRA"),
}
# Friendly form limits for well-known numbers: (min, max, step, label, help). The catalogue's
# own limits (often 0…10000) are right for ComfyUI but useless as a form slider.
KNOWN_NUMBERS = {
    "steps": (1, 100, 1, "Steps", "More steps refine the picture but take longer."),
    "cfg": (1.0, 20.0, 0.5, "Prompt strength (CFG)", "How closely the picture follows the prompt."),
    "denoise": (0.0, 1.0, 0.05, "Change strength", "How much of the picture is redrawn (1 = all of it)."),
    "width": (64, 2048, 8, "Width", "Width of the picture in pixels."),
    "height": (64, 2048, 8, "Height", "Height of the picture in pixels."),
    "batch_size": (1, 8, 1, "Number of pictures", "How many pictures one job makes."),
}
CHOICE_LABELS = {"sampler_name": ("sampler", "Sampler"), "scheduler": ("scheduler", "Scheduler")}
IMAGE_LIMITS = {"max_pixels": 16777216, "max_side": 4096}


def draft_spec(
    graph: dict[str, Any],
    *,
    slug: str = "my-workflow",
    name: str = "My workflow",
    catalog: Catalog | None = None,
    exposed: list[tuple[str, list[tuple[str, str]]]] | None = None,
) -> dict[str, Any]:
    """Return a spec dict (Workflow Spec v1.0) proposing fields for the graph's usual inputs.

    Inputs that hold a link in the graph are never proposed; what it does not recognize it leaves
    out, unless the workflow's author exposed it: ``exposed`` lists ``(label, [(node, input)…])``
    for the inputs a converted UI workflow shows on its subgraph nodes, each then a field. The result validates against the same (valid) graph. Raises ValueError when ``graph``
    is not an API-format graph (not an object, or a UI-format workflow), as it cannot guess then.
    """
    if not isinstance(graph, dict) or isinstance(graph.get("nodes"), list):
        raise ValueError("draft_spec needs an API-format graph: a JSON object of {node_id: {class_type, inputs}}")
    catalog = object_info() if catalog is None else catalog
    draft = _Draft(graph, catalog)
    draft.prompts()
    draft.samplers()
    draft.latent_size()
    draft.images()
    draft.media()
    draft.loaders()
    draft.exposed(exposed or [])
    outputs = [nid for nid in draft.order if _cls(graph, nid) in OUTPUT_NODE_KINDS]
    if not outputs:
        outputs = [nid for nid in draft.order if (catalog.get(_cls(graph, nid) or "") or {}).get("output_node")]
    kinds = {
        nid: output_node_kind(_cls(graph, nid) or "", catalog.get(_cls(graph, nid) or "") or {}) for nid in outputs
    }
    uses_media = any(k in ("video", "audio") for k in kinds.values()) or any(
        f["type"] in ("video", "audio") for f in draft.fields
    )
    return {
        "spec_version": "1.1" if uses_media else "1.0",
        "slug": slug,
        "name": name,
        "version": "1.0.0",
        "category": draft.category(),
        "description": "",
        "inputs": draft.fields,
        "outputs": [{"node": nid, "type": kinds[nid] or "image"} for nid in outputs],
    }


def _cls(graph: dict[str, Any], node_id: str) -> str | None:
    node = graph.get(node_id)
    class_type = node.get("class_type") if isinstance(node, dict) else None
    return class_type if isinstance(class_type, str) else None


def _inputs(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    node = graph.get(node_id)
    inputs = node.get("inputs") if isinstance(node, dict) else None
    return inputs if isinstance(inputs, dict) else {}


def _order_key(node_id: str) -> tuple[int, int | str]:
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


class _Draft:
    """Accumulates fields while the recognizers run; keeps ids unique and binds unshared."""

    def __init__(self, graph: dict[str, Any], catalog: Catalog) -> None:
        self.graph = graph
        self.catalog = catalog
        self.order = sorted((k for k in graph if isinstance(graph[k], dict)), key=_order_key)
        self.fields: list[dict[str, Any]] = []
        self.bound: set[tuple[str, str]] = set()

    def of_class(self, *classes: str) -> list[str]:
        return [nid for nid in self.order if _cls(self.graph, nid) in classes]

    def literal(self, node_id: str, name: str) -> Any:
        """Return the literal value of an input, or None if it is a link or absent."""
        value = _inputs(self.graph, node_id).get(name)
        return None if isinstance(value, (list, dict)) else value

    def new_id(self, base: str) -> str:
        taken = {f["id"] for f in self.fields}
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        return candidate

    def add(self, field: dict[str, Any], binds: list[tuple[str, str]]) -> None:
        binds = [b for b in binds if b not in self.bound]
        if not binds and not (field["type"] == "mask" and field.get("mode") == "alpha"):
            return
        self.bound.update(binds)
        field["id"] = self.new_id(field["id"])
        if binds:
            field["bind"] = [{"node": n, "input": i} for n, i in binds]
        self.fields.append(field)

    def limits(self, node_id: str, name: str) -> tuple[Any, Any]:
        info = self.catalog.get(_cls(self.graph, node_id) or "")
        kind = input_kind(_cls(self.graph, node_id) or "", info, name) if info else None
        return (kind.minimum, kind.maximum) if kind else (None, None)

    # --- recognizers --------------------------------------------------------------------

    def prompts(self) -> None:
        """CLIPTextEncode texts: the first positive becomes 'prompt', a negative 'negative_prompt'."""
        roles: dict[str, str] = {}
        for sampler in self.of_class(*SAMPLERS):
            for role in ("positive", "negative"):
                source = self.trace_text(_inputs(self.graph, sampler).get(role), role)
                if source and source not in roles:
                    roles[source] = role
        encoders = [nid for nid in self.of_class("CLIPTextEncode") if isinstance(self.literal(nid, "text"), str)]
        groups: dict[str, list[str]] = {"positive": [], "negative": [], "other": []}
        for nid in encoders:
            groups[roles.get(nid, "other")].append(nid)
        for role, base, label, help_text, required in (
            ("positive", "prompt", "Prompt", "Describe the picture you want.", True),
            ("negative", "negative_prompt", "Negative prompt", "Things to keep out of the picture.", False),
            ("other", "text", "Text", "Text encoded for the model.", False),
        ):
            by_text: dict[str, list[str]] = {}
            for nid in groups[role]:  # encoders sharing one text (base + refiner) share one field
                by_text.setdefault(self.literal(nid, "text"), []).append(nid)
            for text, nodes in by_text.items():
                field = {
                    "id": base,
                    "label": label,
                    "type": "text",
                    "multiline": True,
                    "required": required and not self.fields_of(base),
                    "max_length": 10000,
                    "help": help_text,
                }
                if not field["required"]:
                    field["default"] = text
                self.add(field, [(nid, "text") for nid in nodes])

    def fields_of(self, base: str) -> bool:
        return any(f["id"] == base or f["id"].startswith(base + "_") for f in self.fields)

    def trace_text(self, link: Any, role: str, depth: int = 0) -> str | None:
        """Follow a conditioning link upstream to the CLIPTextEncode that made it."""
        if not is_link(link) or depth > 12 or not isinstance(link[0], str) or not isinstance(link[1], int):
            return None
        source, index = link
        cls = _cls(self.graph, source)
        if cls == "CLIPTextEncode":
            return source
        inputs = _inputs(self.graph, source)
        follow = CONDITIONING_PASS.get(cls or "", {}).get(index)
        if follow is None:
            follow = "conditioning" if "conditioning" in inputs else None
        return self.trace_text(inputs.get(follow), role, depth + 1) if follow else None

    def samplers(self) -> None:
        """One seed for every sampler; other settings from the first sampler (shared when equal)."""
        seeds = [(nid, SEED_INPUTS[_cls(self.graph, nid)]) for nid in self.of_class(*SEED_INPUTS)]
        seeds = [(nid, name) for nid, name in seeds if isinstance(self.literal(nid, name), int)]
        if seeds:
            self.add(
                {
                    "id": "seed",
                    "label": "Seed",
                    "type": "seed",
                    "default": -1,
                    "help": "-1 picks a random seed; reuse a seed to repeat a picture.",
                },
                seeds,
            )
        samplers = self.of_class(*SAMPLERS)
        if not samplers:
            return
        first = samplers[0]
        for name in ("steps", "cfg", "sampler_name", "scheduler", "denoise"):
            value = self.literal(first, name)
            wanted = str if name in CHOICE_LABELS else (int, float)
            if not isinstance(value, wanted) or isinstance(value, bool) or _not_finite(value):
                continue
            binds = [(nid, name) for nid in samplers if self.literal(nid, name) == value]
            if name in CHOICE_LABELS:
                field_id, label = CHOICE_LABELS[name]
                self.add(
                    {
                        "id": field_id,
                        "label": label,
                        "type": "choice",
                        "choices": self.combo(first, name, value),
                        "default": value,
                        "help": f"The {label.lower()} used for sampling.",
                    },
                    binds,
                )
            else:
                self.add(self.number(first, name, value), binds)

    def combo(self, node_id: str, name: str, current: str) -> list[str]:
        """Return the catalogue's options for a combo input, current value first."""
        info = self.catalog.get(_cls(self.graph, node_id) or "")
        kind = input_kind(_cls(self.graph, node_id) or "", info, name) if info else None
        options = list(kind.choices or []) if kind and not kind.free_choices else []
        return [current] + [o for o in options if o != current]

    def number(self, node_id: str, name: str, value: Any) -> dict[str, Any]:
        """Return an int/float field for a numeric input, with form-friendly limits."""
        info = self.catalog.get(_cls(self.graph, node_id) or "")
        spec = input_kind(_cls(self.graph, node_id) or "", info, name) if info else None
        kind = "float" if (spec.kind == "FLOAT" if spec else isinstance(value, float)) else "int"
        lo, hi, step, label, help_text = KNOWN_NUMBERS.get(
            name, (None, None, None, name.replace("_", " ").capitalize(), "")
        )
        cat_lo, cat_hi = self.limits(node_id, name)
        lo = cat_lo if lo is None else (lo if cat_lo is None else max(lo, cat_lo))
        hi = cat_hi if hi is None else (hi if cat_hi is None else min(hi, cat_hi))
        lo = value if lo is not None and value < lo else lo
        hi = value if hi is not None and value > hi else hi
        cast = float if kind == "float" else int
        field: dict[str, Any] = {
            "id": re.sub(r"\W", "_", name),
            "label": label,
            "type": kind,
            "default": cast(value),
            "help": help_text,
        }
        if lo is not None:
            field["min"] = cast(lo)
        if hi is not None:
            field["max"] = cast(hi)
        if step is not None:
            field["step"] = cast(step)
        return field

    def latent_size(self) -> None:
        latents = self.of_class("EmptyLatentImage", "EmptySD3LatentImage")
        if not latents:
            return
        for name in ("width", "height", "batch_size"):
            value = self.literal(latents[0], name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not _not_finite(value):
                self.add(self.number(latents[0], name, int(value)), [(latents[0], name)])

    def images(self) -> None:
        """LoadImage → image fields; LoadImageMask → file masks; a used MASK output → alpha mask."""
        image_ids: dict[str, str] = {}
        for nid in self.of_class("LoadImage"):
            before = len(self.fields)
            self.add(
                {
                    "id": "image",
                    "label": "Image",
                    "type": "image",
                    "required": True,
                    **IMAGE_LIMITS,
                    "help": "The picture to start from.",
                },
                [(nid, "image")],
            )
            if len(self.fields) > before:
                image_ids[nid] = self.fields[-1]["id"]
        if not image_ids:
            return
        masked: set[str] = set()
        first_image = next(iter(image_ids.values()))
        for nid in self.of_class("LoadImageMask"):
            if first_image in masked:
                break
            masked.add(first_image)
            self.add(
                {
                    "id": "mask",
                    "label": "Mask",
                    "type": "mask",
                    "required": True,
                    "for_image": first_image,
                    "help": "Paint the area to change (white = change).",
                },
                [(nid, "image")],
            )
        for loader, image_id in image_ids.items():
            if image_id in masked or not self.mask_output_used(loader):
                continue
            masked.add(image_id)
            self.add(
                {
                    "id": "mask",
                    "label": "Mask",
                    "type": "mask",
                    "required": True,
                    "for_image": image_id,
                    "mode": "alpha",
                    "help": "Paint the area to change.",
                },
                [],
            )

    def media(self) -> None:
        """LoadVideo → a video field, LoadAudio → an audio field (spec 1.1)."""
        for nid in self.of_class("LoadVideo"):
            self.add(
                {
                    "id": "video",
                    "label": "Video",
                    "type": "video",
                    "required": True,
                    "max_seconds": 60.0,
                    "help": "The clip to start from (MP4, WebM, MOV).",
                },
                [(nid, "file")],
            )
        for nid in self.of_class("LoadAudio"):
            self.add(
                {
                    "id": "audio",
                    "label": "Sound",
                    "type": "audio",
                    "required": True,
                    "max_seconds": 600.0,
                    "help": "The recording to start from (WAV, FLAC, MP3, Ogg).",
                },
                [(nid, "audio")],
            )

    def mask_output_used(self, loader: str) -> bool:
        return any(
            is_link(v) and v[0] == loader and v[1] == 1 for nid in self.order for v in _inputs(self.graph, nid).values()
        )

    def loaders(self) -> None:
        for cls, (name, field_id, label) in LOADERS.items():
            for nid in self.of_class(cls):
                value = self.literal(nid, name)
                if isinstance(value, str) and value:
                    self.add(
                        {
                            "id": field_id,
                            "label": label,
                            "type": "choice",
                            "choices": [value],
                            "default": value,
                            "help": "The model file on the GPU servers; add the others you have installed.",
                        },
                        [(nid, name)],
                    )

    def exposed(self, entries: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """A field for each input the author exposed that no recognizer took, by its kind."""
        for label, targets in entries:
            if re.fullmatch(r"[a-z0-9_]+", label):  # a bare input name: "ckpt_name" → "Ckpt name"
                label = label.replace("_", " ").strip().capitalize() or label
            binds = [(n, i) for n, i in targets if n in self.graph and self.literal(n, i) is not None]
            if not binds or self.join(binds):
                continue
            node_id, name = binds[0]
            info = self.catalog.get(_cls(self.graph, node_id) or "")
            kind = input_kind(_cls(self.graph, node_id) or "", info, name) if info else None
            value = self.literal(node_id, name)
            base = re.sub(r"\W", "_", label.strip().lower()).strip("_") or re.sub(r"\W", "_", name)
            base = base if re.match(r"[A-Za-z_]", base) else f"f_{base}"
            binds = [(n, i) for n, i in binds if self.literal(n, i) == value]
            if kind is None:
                continue
            if kind.kind == "COMBO" and isinstance(value, str):
                choices = [value] if kind.free_choices else self.combo(node_id, name, value)
                field = {"id": base, "label": label, "type": "choice", "choices": choices, "default": value}
            elif kind.kind in ("INT", "FLOAT") and isinstance(value, (int, float)) and not isinstance(value, bool):
                lo, hi = kind.minimum, kind.maximum
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    continue  # the saved value is outside what this ComfyUI allows: no sensible field
                field = {**self.number(node_id, name, value), "id": base, "label": label}
                for n, i in binds:  # one field sets every target: keep within the limits of each
                    lo, hi = self.limits(n, i)
                    if lo is not None and "min" in field and field["min"] < lo:
                        field["min"] = type(field["min"])(lo)
                    if hi is not None and "max" in field and field["max"] > hi:
                        field["max"] = type(field["max"])(hi)
                    for key, limit in (("min", lo), ("max", hi)):  # a float cannot hold a huge int limit
                        if key in field and limit is not None:
                            if (key == "min" and field[key] < limit) or (key == "max" and field[key] > limit):
                                del field[key]
                if not field.get("min", value) <= value <= field.get("max", value):
                    continue
            elif kind.kind == "STRING" and isinstance(value, str):
                field = {"id": base, "label": label, "type": "text", "multiline": "\n" in value, "default": value}
            elif kind.kind == "BOOLEAN" and isinstance(value, bool):
                field = {"id": base, "label": label, "type": "bool", "default": value}
            else:
                continue
            field["id"] = field["id"][:64]
            self.add(field, binds)

    def join(self, binds: list[tuple[str, str]]) -> bool:
        """True when a field already sets one of these inputs. The author made them share one
        value (a primitive node, one subgraph input), so that field sets the others too when
        they hold a value of the same kind."""
        owners = [f for f in self.fields if any({"node": n, "input": i} in f.get("bind", []) for n, i in binds)]
        if not owners:
            return False
        if len(owners) == 1:
            field, first = owners[0], owners[0]["bind"][0]
            kind = self.kind_of(first["node"], first["input"])
            for n, i in binds:
                if (n, i) not in self.bound and self.kind_of(n, i) == kind and kind in ("INT", "FLOAT", "STRING"):
                    if kind != "STRING" and not self.within(field, n, i):
                        continue  # that input allows less than the field: leave it as the author set it
                    field["bind"].append({"node": n, "input": i})
                    self.bound.add((n, i))
        return True

    def within(self, field: dict[str, Any], node_id: str, name: str) -> bool:
        """True when every value the field allows is one this input allows too."""
        lo, hi = self.limits(node_id, name)
        low = field.get("min", 0 if field["type"] == "seed" else None)
        high = field.get("max", 2**64 - 1 if field["type"] == "seed" else None)
        if lo is not None and (low is None or low < lo):
            return False
        return not (hi is not None and (high is None or high > hi))

    def kind_of(self, node_id: str, name: str) -> str | None:
        info = self.catalog.get(_cls(self.graph, node_id) or "")
        kind = input_kind(_cls(self.graph, node_id) or "", info, name) if info else None
        return kind.kind if kind else None

    def category(self) -> str:
        types = {f["type"] for f in self.fields}
        if "mask" in types:
            return "inpaint"
        if "image" in types:
            return "img2img" if self.of_class(*SAMPLERS) else "tools"
        return "txt2img" if self.of_class(*SAMPLERS) else "general"


def _not_finite(value: Any) -> bool:
    """Infinity or NaN (Python's JSON reader accepts them): no form field can offer such a default."""
    return isinstance(value, float) and not math.isfinite(value)
