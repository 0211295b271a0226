"""Fakes for model nodes, and the generic fallback that lets any catalogued class "run".

No weights exist here, so loaders return ``Fake`` placeholders, latents carry only their
size, seed and (for img2img) source pixels, samplers sleep ``step_time`` per step (the
executor does that, see ``sampler_steps``), and VAEDecode paints a seeded pattern.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import images as im
from ..catalog import input_info, input_names
from .base import Fake, NodeContext, Out, node

F32 = np.float32
LATENT_CHANNELS = 4


def make_latent(batch: int, height: int, width: int, channels: int = LATENT_CHANNELS, **extra: Any) -> dict[str, Any]:
    """A LATENT dict shaped like the real one (``samples`` is [B,C,H/8,W/8])."""
    latent = {"samples": np.zeros((batch, channels, max(1, height // 8), max(1, width // 8)), dtype=F32)}
    latent.update(extra)
    return latent


def latent_size(latent: dict[str, Any]) -> tuple[int, int, int]:
    """``(batch, height, width)`` in pixels."""
    s = latent["samples"].shape
    return s[0], s[-2] * 8, s[-1] * 8


@node("EmptyLatentImage", "EmptySD3LatentImage")
def empty_latent(ctx: NodeContext, width: int, height: int, batch_size: int = 1) -> tuple[Any, ...]:
    channels = 16 if ctx.class_type == "EmptySD3LatentImage" else LATENT_CHANNELS
    return (make_latent(batch_size, height, width, channels),)


@node("VAEEncode", "VAEEncodeForInpaint", "VAEEncodeTiled")
def vae_encode(ctx: NodeContext, pixels: np.ndarray, vae: Any = None, **_: Any) -> tuple[Any, ...]:
    b, h, w = pixels.shape[0], (pixels.shape[1] // 8) * 8, (pixels.shape[2] // 8) * 8
    return (make_latent(b, h, w, image=np.ascontiguousarray(pixels[:, :h, :w, :3])),)


@node("VAEDecode", "VAEDecodeTiled")
def vae_decode(ctx: NodeContext, samples: dict[str, Any], vae: Any = None, **_: Any) -> tuple[Any, ...]:
    if samples.get("frames"):  # a video latent (Wan, LTX-Video, Hunyuan): one picture per frame
        return (decode_frames(samples),)
    batch, height, width = latent_size(samples)
    if "seed" not in samples and samples.get("image") is not None:
        return (samples["image"],)
    return (im.seeded_pattern(batch, height, width, int(samples.get("seed", 0))),)


def decode_frames(samples: dict[str, Any]) -> np.ndarray:
    """A fake video latent decoded: ``frames`` pictures that move (the pattern drifts right)."""
    s = samples["samples"].shape
    height, width, frames = s[-2] * 8, s[-1] * 8, int(samples["frames"])
    base = im.seeded_pattern(1, height, width, int(samples.get("seed", 0)))[0]
    step = max(1, width // max(frames, 1))
    return np.stack([np.roll(base, shift=i * step, axis=1) for i in range(frames)]).astype(F32)


def sampler_steps(class_type: str, inputs: dict[str, Any]) -> int:
    """How many progress steps a node reports (0 for nodes that are not samplers)."""
    if class_type == "KSamplerAdvanced":
        steps = int(inputs.get("steps", 1))
        end = min(int(inputs.get("end_at_step", steps)), steps)
        return max(1, end - int(inputs.get("start_at_step", 0)))
    if "steps" in inputs and isinstance(inputs.get("latent_image"), dict):
        return max(1, int(inputs["steps"]))
    sigmas = inputs.get("sigmas")
    if isinstance(sigmas, Fake) and isinstance(inputs.get("latent_image"), dict):
        return max(1, int(sigmas.attrs.get("steps", 1)))
    return 0


def _sampled(latent: dict[str, Any], seed: Any) -> dict[str, Any]:
    out = dict(latent)
    out["samples"] = np.array(latent["samples"], copy=True)
    out["seed"] = int(seed) if isinstance(seed, (int, float)) else 0
    return out


@node("KSampler")
def ksampler(ctx: NodeContext, latent_image: dict[str, Any], seed: int = 0, **_: Any) -> tuple[Any, ...]:
    return (_sampled(latent_image, seed),)


@node("KSamplerAdvanced")
def ksampler_advanced(ctx: NodeContext, latent_image: dict[str, Any], noise_seed: int = 0, **_: Any) -> tuple[Any, ...]:
    return (_sampled(latent_image, noise_seed),)


@node("SamplerCustom")
def sampler_custom(ctx: NodeContext, latent_image: dict[str, Any], noise_seed: int = 0, **_: Any) -> tuple[Any, ...]:
    out = _sampled(latent_image, noise_seed)
    return out, out


@node("SamplerCustomAdvanced")
def sampler_custom_advanced(
    ctx: NodeContext, latent_image: dict[str, Any], noise: Any = None, **_: Any
) -> tuple[Any, ...]:
    seed = noise.attrs.get("seed", 0) if isinstance(noise, Fake) else 0
    out = _sampled(latent_image, seed)
    return out, out


@node("RandomNoise")
def random_noise(ctx: NodeContext, noise_seed: int = 0) -> tuple[Any, ...]:
    return (Fake("NOISE", "random", {"seed": noise_seed}),)


@node("LatentUpscale")
def latent_upscale(
    ctx: NodeContext, samples: dict[str, Any], upscale_method: str, width: int, height: int, crop: str = "disabled"
) -> tuple[Any, ...]:
    batch, h, w = latent_size(samples)
    if width == 0 and height == 0:
        return (samples,)
    if width == 0:
        width = max(64, round(w * height / h))
    elif height == 0:
        height = max(64, round(h * width / w))
    return (_resized_latent(samples, batch, height, width),)


@node("LatentUpscaleBy")
def latent_upscale_by(
    ctx: NodeContext, samples: dict[str, Any], upscale_method: str, scale_by: float
) -> tuple[Any, ...]:
    batch, h, w = latent_size(samples)
    return (_resized_latent(samples, batch, round(h / 8 * scale_by) * 8, round(w / 8 * scale_by) * 8),)


def _resized_latent(samples: dict[str, Any], batch: int, height: int, width: int) -> dict[str, Any]:
    extra = {k: v for k, v in samples.items() if k not in ("samples", "image")}
    if samples.get("image") is not None:
        extra["image"] = im.resize(samples["image"], (height // 8) * 8, (width // 8) * 8, "bilinear")
    return make_latent(batch, height, width, samples["samples"].shape[1], **extra)


@node("UpscaleModelLoader")
def upscale_model_loader(ctx: NodeContext, model_name: str) -> tuple[Any, ...]:
    lowered = os.path.basename(model_name).lower()
    scale = 2 if ("x2" in lowered or "2x" in lowered) else 4
    return (Fake("UPSCALE_MODEL", model_name, {"scale": scale}),)


@node("ImageUpscaleWithModel")
def image_upscale_with_model(ctx: NodeContext, upscale_model: Any, image: np.ndarray) -> tuple[Any, ...]:
    scale = upscale_model.attrs.get("scale", 4) if isinstance(upscale_model, Fake) else 4
    return (im.resize(image, image.shape[1] * scale, image.shape[2] * scale, "nearest-exact"),)


@node("SaveAnimatedWEBP", "SaveAnimatedPNG")
def save_animated(
    ctx: NodeContext,
    images: np.ndarray,
    filename_prefix: str = "ComfyUI",
    fps: float = 6.0,
    lossless: bool = True,
    quality: int = 80,
    method: str = "default",
    **_: Any,
) -> Out:
    ext = "webp" if ctx.class_type == "SaveAnimatedWEBP" else "png"
    folder, filename, counter, subfolder = ctx.folders.save_image_path(
        filename_prefix, ctx.folders.output, images.shape[2], images.shape[1]
    )
    frames = [im.to_pil(frame) for frame in images]
    name = f"{filename}_{counter:05}_.{ext}"
    kwargs: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": int(1000.0 / max(fps, 0.01))}
    if ext == "png":
        kwargs["pnginfo"] = ctx.png_info()
    else:  # as ComfyUI's SaveAnimatedWEBP
        kwargs.update(lossless=lossless, quality=quality, method={"fastest": 0, "slowest": 6}.get(method, 4))
    frames[0].save(os.path.join(folder, name), **kwargs)
    return Out(
        (images,),
        {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": [len(frames) > 1]},
    )


def _placeholder(kind: Any, ctx: NodeContext, values: dict[str, Any], node_name: str) -> Any:
    """A neutral value of one output type, sized from the node's inputs where that makes sense."""
    width, height = values.get("width"), values.get("height")
    batch = values.get("batch_size", 1) if isinstance(values.get("batch_size"), int) else 1
    if kind == "IMAGE":
        ref = next((v for v in values.values() if isinstance(v, np.ndarray) and v.ndim == 4), None)
        if ref is not None:
            return ref
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            return im.solid(batch, height, width, [0.5, 0.5, 0.5])
        return im.solid(1, 64, 64, [0.5, 0.5, 0.5])
    if kind == "MASK":
        return np.zeros((1, 64, 64), dtype=F32)
    if kind == "LATENT":
        pixels = next((v for v in values.values() if isinstance(v, np.ndarray) and v.ndim == 4), None)
        if pixels is not None:
            h, w = (pixels.shape[1] // 8) * 8, (pixels.shape[2] // 8) * 8
            return make_latent(pixels.shape[0], h, w, image=np.asarray(pixels[:, :h, :w, :3], dtype=F32))
        if isinstance(width, int) and isinstance(height, int):
            return make_latent(batch, height, width)
        return make_latent(1, 512, 512)
    if kind == "SIGMAS" and isinstance(values.get("steps"), int):
        return Fake("SIGMAS", node_name, {"steps": values["steps"]})
    if kind == "NOISE":
        return Fake("NOISE", node_name, {"seed": values.get("noise_seed", values.get("seed", 0))})
    defaults = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}
    if isinstance(kind, str) and kind in defaults:
        return defaults[kind]
    if isinstance(kind, list):
        return kind[0] if kind else ""
    return Fake(str(kind), node_name)


def fallback(ctx: NodeContext, **values: Any) -> Out:
    """Run a class with no implementation: pass through the first input of each output's type."""
    info = ctx.info
    names = input_names(info)
    label = next((str(v) for k, v in values.items() if k.endswith("_name") and isinstance(v, str)), ctx.class_type)
    outputs = []
    used: set[str] = set()
    for kind in info.get("output", []):
        matching = [
            n
            for n in names
            if n in values and values[n] is not None and (kind == "*" or input_info(info, n)[0] == kind)
        ]
        fresh = [n for n in matching if n not in used]
        pick = (fresh or matching or [None])[0]
        if pick is not None:
            used.add(pick)
            outputs.append(values[pick])
        else:
            outputs.append(_placeholder(kind, ctx, values, label))
    ui = None
    if info.get("output_node"):
        image = next((values[n] for n in names if input_info(info, n)[0] == "IMAGE" and n in values), None)
        if isinstance(image, np.ndarray):
            prefix = "ComfyUI" + ctx.preview_suffix(ctx.node_id)
            ui = {"images": ctx.save_images(np.asarray(image, dtype=F32), prefix, "temp", 1)}
    return Out(tuple(outputs), ui)
