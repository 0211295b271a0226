"""The node catalogue as this server serves it: real key order, live file and model lists.

``object_info.json`` is stored with sorted keys; the real server answers in registration
order, and clients compare ``input_config`` values key for key, so entries are re-ordered
here. Combo inputs that list files (LoadImage, model loaders) are filled from the data
folders at request time, as the real server does.
"""

from __future__ import annotations

import copy
import mimetypes
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from nodes.comfy.catalog import object_info as _stock_object_info

# Order of the keys of one node entry (V1 first, V3 extras where V3 puts them).
NODE_KEY_ORDER = (
    "input",
    "input_order",
    "is_input_list",
    "output",
    "output_is_list",
    "output_name",
    "output_tooltips",
    "output_matchtypes",
    "name",
    "display_name",
    "description",
    "python_module",
    "category",
    "output_node",
    "deprecated",
    "experimental",
    "dev_only",
    "api_node",
    "price_badge",
    "has_intermediate_output",
    "search_aliases",
    "essentials_category",
)
# V1 node entries put has_intermediate_output after output_node (seen for ImageScale).
V1_NODE_KEY_ORDER = (
    "input",
    "input_order",
    "is_input_list",
    "output",
    "output_is_list",
    "output_name",
    "output_tooltips",
    "name",
    "display_name",
    "description",
    "python_module",
    "category",
    "output_node",
    "deprecated",
    "experimental",
    "has_intermediate_output",
    "search_aliases",
    "essentials_category",
)
# Order of the option keys of one input spec (nodes.py writes default, min, max, step, …).
OPTION_KEY_ORDER = (
    "default",
    "min",
    "max",
    "step",
    "round",
    "display",
    "multiline",
    "dynamicPrompts",
    "placeholder",
    "tooltip",
    "lazy",
    "forceInput",
    "defaultInput",
    "control_after_generate",
    "image_upload",
    "image_folder",
    "remote",
    "options",
    "multiselect",
    "advanced",
)
SECTION_ORDER = ("required", "optional", "hidden")

# Combo inputs whose options are the files of a model folder: (class, input) -> folder.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("VAELoader", "vae_name"): "vae",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("GLIGENLoader", "gligen_name"): "gligen",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
}
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
# Placeholder model files created in a fresh data dir so typical graphs validate.
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "checkpoints": (
        "v1-5-pruned-emaonly.safetensors",
        "sd_xl_base_1.0.safetensors",
        "sd_xl_refiner_1.0.safetensors",
        "flux1-dev-fp8.safetensors",
        "sd15_unclip.safetensors",
        "ltx-video-2b-v0.9.5.safetensors",
        "stable-audio-open-1.0.safetensors",
    ),
    "loras": ("example_lora.safetensors", "detail_tweaker.safetensors"),
    "vae": (
        "ae.safetensors",
        "sdxl_vae.safetensors",
        "vae-ft-mse-840000-ema-pruned.safetensors",
        "wan_2.1_vae.safetensors",
    ),
    "controlnet": (
        "control_v11p_sd15_canny.pth",
        "control_v11f1p_sd15_depth.pth",
        "controlnet-canny-sdxl-1.0.safetensors",
    ),
    "upscale_models": ("RealESRGAN_x4plus.pth", "4x-UltraSharp.pth", "RealESRGAN_x2plus.pth"),
    "diffusion_models": (
        "flux1-dev.safetensors",
        "flux1-schnell.safetensors",
        "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors",
    ),
    "text_encoders": (
        "clip_l.safetensors",
        "t5xxl_fp16.safetensors",
        "t5xxl_fp8_e4m3fn.safetensors",
        "clip_g.safetensors",
        "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "t5-base.safetensors",
    ),
    "clip_vision": ("clip_vision_g.safetensors", "clip_vision_h.safetensors"),
    "style_models": ("flux1-redux-dev.safetensors",),
}


def _media_type(name: str) -> str:
    """The first part of a file's guessed content type ("audio", "video", "image"…), as
    folder_paths.filter_files_content_types does."""
    guessed = mimetypes.guess_type(name)[0] or ""
    return guessed.split("/", 1)[0]


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _order(d: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(order)}
    return {k: d[k] for k in sorted(d, key=lambda k: (rank.get(k, len(order)), k))}


def _order_spec(spec: Any) -> Any:
    if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict):
        return [spec[0], _order(spec[1], OPTION_KEY_ORDER), *spec[2:]]
    return spec


def _order_node(info: dict[str, Any]) -> dict[str, Any]:
    info = copy.deepcopy(info)
    inputs = info.get("input", {})
    order = info.get("input_order", {})
    new_inputs: dict[str, Any] = {}
    for section in SECTION_ORDER:
        if section not in inputs:
            continue
        names = list(order.get(section, [])) + sorted(set(inputs[section]) - set(order.get(section, [])))
        new_inputs[section] = {n: _order_spec(inputs[section][n]) for n in names if n in inputs[section]}
    info["input"] = new_inputs
    info["input_order"] = {s: order[s] for s in SECTION_ORDER if s in order}
    is_v3 = "api_node" in info
    return _order(info, NODE_KEY_ORDER if is_v3 else V1_NODE_KEY_ORDER)


@lru_cache(maxsize=1)
def stock_catalog() -> dict[str, dict[str, Any]]:
    """The stock catalogue re-ordered to the real server's key order (computed once)."""
    return {cls: _order_node(info) for cls, info in _stock_object_info().items()}


class Catalog:
    """Node definitions with live combo options; ``files`` lists a folder's visible files."""

    def __init__(self, input_files: Callable[[], list[str]], model_files: Callable[[str], list[str]]):
        self._input_files = input_files
        self._model_files = model_files

    def classes(self) -> list[str]:
        return list(stock_catalog())

    def has(self, class_type: Any) -> bool:
        return isinstance(class_type, str) and class_type in stock_catalog()

    def raw(self, class_type: str) -> dict[str, Any]:
        """The static entry (no copy; do not mutate). Live combos are not applied."""
        return stock_catalog()[class_type]

    def info(self, class_type: str) -> dict[str, Any]:
        """A copy of one entry with the live file lists filled in."""
        info = stock_catalog()[class_type]
        dynamic = self._dynamic_inputs(class_type)
        if not dynamic:
            return info
        info = copy.deepcopy(info)
        for (section, name), options in dynamic.items():
            spec = info["input"][section][name]
            if spec[0] == "COMBO":
                spec[1]["options"] = options
            else:
                spec[0] = options
        return info

    def all_info(self) -> dict[str, dict[str, Any]]:
        return {cls: self.info(cls) for cls in stock_catalog()}

    def _dynamic_inputs(self, class_type: str) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = {}
        if class_type in ("LoadImage", "LoadImageMask"):
            out[("required", "image")] = [f for f in self._input_files() if f.lower().endswith(IMAGE_EXTENSIONS)]
        if class_type == "LoadAudio":  # ComfyUI lists input files whose type is audio or video
            out[("required", "audio")] = [f for f in self._input_files() if _media_type(f) in ("audio", "video")]
        if class_type == "LoadVideo":
            out[("required", "file")] = [f for f in self._input_files() if _media_type(f) == "video"]
        for (cls, name), folder in MODEL_INPUTS.items():
            if cls == class_type:
                info = stock_catalog()[cls]
                section = next((s for s in SECTION_ORDER if name in info["input"].get(s, {})), None)
                if section is None:
                    continue
                spec = info["input"][section][name]
                static = spec[1].get("options", []) if spec[0] == "COMBO" else list(spec[0])
                files = self._model_files(folder)
                out[(section, name)] = files + [s for s in static if s not in files]
        return out

    def output_types(self, class_type: str) -> tuple[Any, ...]:
        return tuple(stock_catalog()[class_type].get("output", []))

    def is_output_node(self, class_type: str) -> bool:
        return bool(stock_catalog()[class_type].get("output_node"))


def input_info(info: dict[str, Any], name: str) -> tuple[Any, str | None, dict[str, Any]]:
    """``(input_type, category, extra_info)`` of one input, like ComfyUI's get_input_info."""
    for section in SECTION_ORDER:
        spec = info.get("input", {}).get(section, {}).get(name)
        if spec is None:
            continue
        if isinstance(spec, str):
            return spec, section, {}
        extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return spec[0], section, extra
    return None, None, {}


def input_names(info: dict[str, Any], sections: tuple[str, ...] = ("required", "optional")) -> list[str]:
    """Input names in declaration order (input_order, then any stragglers)."""
    names: list[str] = []
    for section in sections:
        declared = info.get("input", {}).get(section, {})
        for n in info.get("input_order", {}).get(section, []):
            if n in declared and n not in names:
                names.append(n)
        names += [n for n in declared if n not in names]
    return names


def list_visible_files(folder: str) -> list[str]:
    """Top-level visible files of ``folder``, sorted (what LoadImage's combo shows)."""
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
