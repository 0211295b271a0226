"""Model-free image nodes, computed for real with numpy (float32, as ComfyUI's torch code)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .. import images as im
from .base import NodeContext, Out, node

F32 = np.float32


def _as_f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=F32)


@node("LoadImage", "LoadImageOutput")
def load_image(ctx: NodeContext, image: str) -> tuple[Any, ...]:
    default_dir = ctx.folders.output if ctx.class_type == "LoadImageOutput" else None
    rgb, alpha = im.decode(ctx.folders.annotated_path(image, default_dir))
    mask = (F32(1.0) - alpha)[None] if alpha is not None else np.zeros((1, 64, 64), dtype=F32)
    return rgb[None], mask


@node("LoadImageMask")
def load_image_mask(ctx: NodeContext, image: str, channel: str) -> tuple[Any, ...]:
    rgb, alpha = im.decode(ctx.folders.annotated_path(image))
    if channel == "alpha":
        mask = (F32(1.0) - alpha) if alpha is not None else np.zeros((64, 64), dtype=F32)
    else:
        mask = rgb[..., ("red", "green", "blue").index(channel)]
    return (np.ascontiguousarray(mask)[None],)


@node("SaveImage")
def save_image(ctx: NodeContext, images: np.ndarray, filename_prefix: str = "ComfyUI") -> Out:
    return Out((images,), {"images": ctx.save_images(images, filename_prefix, "output", 4)})


@node("PreviewImage")
def preview_image(ctx: NodeContext, images: np.ndarray) -> Out:
    prefix = "ComfyUI" + ctx.preview_suffix(ctx.node_id)
    return Out((images,), {"images": ctx.save_images(images, prefix, "temp", 1)})


@node("MaskPreview")
def mask_preview(ctx: NodeContext, mask: np.ndarray) -> Out:
    preview = np.repeat(_as_f32(mask).reshape(-1, mask.shape[-2], mask.shape[-1])[..., None], 3, axis=3)
    prefix = "ComfyUI" + ctx.preview_suffix(ctx.node_id)
    return Out((mask,), {"images": ctx.save_images(preview, prefix, "temp", 1)})


@node("PreviewAny")
def preview_any(ctx: NodeContext, source: Any = None) -> Out:
    value = "None"
    if isinstance(source, str):
        value = source
    elif isinstance(source, (int, float, bool)):
        value = str(source)
    elif source is not None:
        try:
            value = json.dumps(source)
        except Exception:
            value = str(source)
    return Out((value,), {"text": [value]})


@node("EmptyImage")
def empty_image(ctx: NodeContext, width: int, height: int, batch_size: int = 1, color: int = 0) -> tuple[Any, ...]:
    rgb = [F32(((color >> s) & 0xFF) / 0xFF) for s in (16, 8, 0)]
    return (im.solid(batch_size, height, width, rgb),)


@node("ImageInvert")
def image_invert(ctx: NodeContext, image: np.ndarray) -> tuple[Any, ...]:
    return (F32(1.0) - image,)


def _upscale(image: np.ndarray, method: str, width: int, height: int, crop: str) -> np.ndarray:
    if crop == "center":
        image = im.center_crop(image, width, height)
    return im.resize(image, height, width, method)


@node("ImageScale")
def image_scale(
    ctx: NodeContext, image: np.ndarray, upscale_method: str, width: int, height: int, crop: str = "disabled"
) -> tuple[Any, ...]:
    if width == 0 and height == 0:
        return (image,)
    if width == 0:
        width = max(1, round(image.shape[2] * height / image.shape[1]))
    elif height == 0:
        height = max(1, round(image.shape[1] * width / image.shape[2]))
    return (_upscale(image, upscale_method, width, height, crop),)


@node("ImageScaleBy")
def image_scale_by(ctx: NodeContext, image: np.ndarray, upscale_method: str, scale_by: float) -> tuple[Any, ...]:
    width = round(image.shape[2] * scale_by)
    height = round(image.shape[1] * scale_by)
    return (_upscale(image, upscale_method, width, height, "disabled"),)


@node("ImageScaleToTotalPixels")
def image_scale_total(
    ctx: NodeContext, image: np.ndarray, upscale_method: str, megapixels: float, resolution_steps: int = 1
) -> tuple[Any, ...]:
    total = megapixels * 1024 * 1024
    scale_by = math.sqrt(total / (image.shape[2] * image.shape[1]))
    steps = max(1, resolution_steps)
    width = max(steps, round(image.shape[2] * scale_by / steps) * steps)
    height = max(steps, round(image.shape[1] * scale_by / steps) * steps)
    return (_upscale(image, upscale_method, width, height, "disabled"),)


@node("ImageCrop")
def image_crop(ctx: NodeContext, image: np.ndarray, width: int, height: int, x: int, y: int) -> tuple[Any, ...]:
    x = min(x, image.shape[2] - 1)
    y = min(y, image.shape[1] - 1)
    return (image[:, y : y + height, x : x + width, :],)


@node("ImageBlur")
def image_blur(ctx: NodeContext, image: np.ndarray, blur_radius: int, sigma: float) -> tuple[Any, ...]:
    return (im.blur(image, blur_radius, sigma),)


@node("ImageSharpen")
def image_sharpen(
    ctx: NodeContext, image: np.ndarray, sharpen_radius: int, sigma: float, alpha: float
) -> tuple[Any, ...]:
    if sharpen_radius == 0:
        return (image,)
    a = F32(alpha * 10)
    out = (F32(1) + a) * _as_f32(image) - a * im.blur(image, sharpen_radius, sigma)
    return (np.clip(out, 0, 1).astype(F32),)


@node("ImageFlip")
def image_flip(ctx: NodeContext, image: np.ndarray, flip_method: str) -> tuple[Any, ...]:
    axis = 1 if flip_method.startswith("x") else 2
    return (np.flip(image, axis=axis),)


@node("ImageRotate")
def image_rotate(ctx: NodeContext, image: np.ndarray, rotation: str) -> tuple[Any, ...]:
    k = {"9": 1, "1": 2, "2": 3}.get(rotation[:1], 0) if rotation != "none" else 0
    return (np.rot90(image, k=k, axes=(2, 1)),)


@node("ImagePadForOutpaint")
def image_pad(
    ctx: NodeContext, image: np.ndarray, left: int, top: int, right: int, bottom: int, feathering: int = 40
) -> tuple[Any, ...]:
    b, h, w, c = image.shape
    out = np.full((b, h + top + bottom, w + left + right, c), F32(0.5), dtype=F32)
    out[:, top : top + h, left : left + w, :] = image
    mask = np.ones((h + top + bottom, w + left + right), dtype=F32)
    t = np.zeros((h, w), dtype=F32)
    if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
        i = np.arange(h)[:, None]
        j = np.arange(w)[None, :]
        d = np.minimum.reduce(
            [
                np.broadcast_to(i if top else np.full_like(i, h), (h, w)),
                np.broadcast_to(h - i if bottom else np.full_like(i, h), (h, w)),
                np.broadcast_to(j if left else np.full_like(j, w), (h, w)),
                np.broadcast_to(w - j if right else np.full_like(j, w), (h, w)),
            ]
        )
        v = (feathering - d) / feathering
        t = np.where(d >= feathering, 0, v * v).astype(F32)
    mask[top : top + h, left : left + w] = t
    return out, mask[None]


@node("SolidMask")
def solid_mask(ctx: NodeContext, value: float, width: int, height: int) -> tuple[Any, ...]:
    return (np.full((1, height, width), F32(value), dtype=F32),)


@node("MaskToImage")
def mask_to_image(ctx: NodeContext, mask: np.ndarray) -> tuple[Any, ...]:
    m = _as_f32(mask).reshape(-1, mask.shape[-2], mask.shape[-1])
    return (np.repeat(m[..., None], 3, axis=3),)


@node("ImageToMask")
def image_to_mask(ctx: NodeContext, image: np.ndarray, channel: str) -> tuple[Any, ...]:
    index = ["red", "green", "blue", "alpha"].index(channel)
    if index >= image.shape[3]:
        raise IndexError(f"index {index} is out of bounds for dimension 3 with size {image.shape[3]}")
    return (np.ascontiguousarray(image[:, :, :, index]),)


@node("InvertMask")
def invert_mask(ctx: NodeContext, mask: np.ndarray) -> tuple[Any, ...]:
    return (F32(1.0) - mask,)


@node("ThresholdMask")
def threshold_mask(ctx: NodeContext, mask: np.ndarray, value: float) -> tuple[Any, ...]:
    return ((mask > value).astype(F32),)


@node("GrowMask")
def grow_mask(ctx: NodeContext, mask: np.ndarray, expand: int, tapered_corners: bool = True) -> tuple[Any, ...]:
    out = _as_f32(mask).reshape(-1, mask.shape[-2], mask.shape[-1]).copy()
    offsets = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    if not tapered_corners:
        offsets += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    reduce = np.maximum if expand > 0 else np.minimum
    for _ in range(abs(expand)):
        padded = np.pad(out, ((0, 0), (1, 1), (1, 1)), mode="edge")
        h, w = out.shape[1:]
        acc = out.copy()
        for dy, dx in offsets:
            acc = reduce(acc, padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
        out = acc
    return (out,)


@node("FeatherMask")
def feather_mask(ctx: NodeContext, mask: np.ndarray, left: int, top: int, right: int, bottom: int) -> tuple[Any, ...]:
    out = _as_f32(mask).reshape(-1, mask.shape[-2], mask.shape[-1]).copy()
    left, right = min(left, out.shape[-1]), min(right, out.shape[-1])
    top, bottom = min(top, out.shape[-2]), min(bottom, out.shape[-2])
    for x in range(left):
        out[:, :, x] *= F32((x + 1.0) / left)
    for x in range(right):
        out[:, :, -x] *= F32((x + 1) / right)
    for y in range(top):
        out[:, y, :] *= F32((y + 1) / top)
    for y in range(bottom):
        out[:, -y, :] *= F32((y + 1) / bottom)
    return (out,)


@node("CropMask")
def crop_mask(ctx: NodeContext, mask: np.ndarray, x: int, y: int, width: int, height: int) -> tuple[Any, ...]:
    m = mask.reshape(-1, mask.shape[-2], mask.shape[-1])
    return (m[:, y : y + height, x : x + width],)


@node("MaskComposite")
def mask_composite(
    ctx: NodeContext, destination: np.ndarray, source: np.ndarray, x: int, y: int, operation: str
) -> tuple[Any, ...]:
    out = _as_f32(destination).reshape(-1, destination.shape[-2], destination.shape[-1]).copy()
    src = _as_f32(source).reshape(-1, source.shape[-2], source.shape[-1])
    right, bottom = min(x + src.shape[-1], out.shape[-1]), min(y + src.shape[-2], out.shape[-2])
    s = src[:, : bottom - y, : right - x]
    d = out[:, y:bottom, x:right]
    ops = {
        "multiply": lambda: d * s,
        "add": lambda: d + s,
        "subtract": lambda: d - s,
        "and": lambda: (np.round(d).astype(bool) & np.round(s).astype(bool)).astype(F32),
        "or": lambda: (np.round(d).astype(bool) | np.round(s).astype(bool)).astype(F32),
        "xor": lambda: (np.round(d).astype(bool) ^ np.round(s).astype(bool)).astype(F32),
    }
    out[:, y:bottom, x:right] = ops[operation]()
    return (np.clip(out, 0.0, 1.0),)


@node("ImageColorToMask")
def image_color_to_mask(ctx: NodeContext, image: np.ndarray, color: int) -> tuple[Any, ...]:
    t = np.round(np.clip(_as_f32(image), 0, 1) * F32(255.0)).astype(np.int64)
    packed = (t[..., 0] << 16) + (t[..., 1] << 8) + t[..., 2]
    return ((packed == color).astype(F32),)


def composite(
    destination: np.ndarray, source: np.ndarray, x: int, y: int, mask: np.ndarray | None, resize_source: bool
) -> np.ndarray:
    """node_helpers' composite with multiplier 1, on [B,H,W,C] arrays."""
    dest = np.array(destination, dtype=F32, copy=True)
    src = _as_f32(source)
    if resize_source:
        src = im.resize(src, dest.shape[1], dest.shape[2], "bilinear")
    if src.shape[0] < dest.shape[0]:
        src = np.concatenate([src] * math.ceil(dest.shape[0] / src.shape[0]))[: dest.shape[0]]
    x = max(-src.shape[2], min(x, dest.shape[2]))
    y = max(-src.shape[1], min(y, dest.shape[1]))
    left, top = x, y
    right, bottom = left + src.shape[2], top + src.shape[1]
    if mask is None:
        m = np.ones(src.shape[:3], dtype=F32)
    else:
        m = im.resize_mask(
            _as_f32(mask).reshape(-1, mask.shape[-2], mask.shape[-1]), src.shape[1], src.shape[2], "bilinear"
        )
        if m.shape[0] < src.shape[0]:
            m = np.concatenate([m] * math.ceil(src.shape[0] / m.shape[0]))[: src.shape[0]]
    vis_w, vis_h = dest.shape[2] - left + min(0, x), dest.shape[1] - top + min(0, y)
    m = m[:, :vis_h, :vis_w, None]
    src_part = m * src[:, :vis_h, :vis_w, :]
    dst_part = (np.ones_like(m) - m) * dest[:, max(top, 0) : bottom, max(left, 0) : right, :]
    dest[:, max(top, 0) : bottom, max(left, 0) : right, :] = src_part + dst_part
    return dest


@node("ImageCompositeMasked")
def image_composite_masked(
    ctx: NodeContext,
    destination: np.ndarray,
    source: np.ndarray,
    x: int,
    y: int,
    resize_source: bool,
    mask: np.ndarray | None = None,
) -> tuple[Any, ...]:
    return (composite(destination, source, x, y, mask, resize_source),)


@node("GetImageSize")
def get_image_size(ctx: NodeContext, image: np.ndarray) -> tuple[Any, ...]:
    batch, height, width = image.shape[0], image.shape[1], image.shape[2]
    ctx.send_text(ctx.node_id, f"width: {width}, height: {height}\n batch size: {batch}")
    return width, height, batch


def _soft_light_g(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.25, ((16 * x - 12) * x + 4) * x, np.sqrt(np.maximum(x, 0)))


@node("ImageBlend")
def image_blend(
    ctx: NodeContext, image1: np.ndarray, image2: np.ndarray, blend_factor: float, blend_mode: str
) -> tuple[Any, ...]:
    a, b = _as_f32(image1), _as_f32(image2)
    if a.shape != b.shape:
        b = _upscale(b, "bicubic", a.shape[2], a.shape[1], "center")
    modes = {
        "normal": lambda: b,
        "multiply": lambda: a * b,
        "screen": lambda: 1 - (1 - a) * (1 - b),
        "overlay": lambda: np.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
        "soft_light": lambda: np.where(
            b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (_soft_light_g(a) - a)
        ),
        "difference": lambda: a - b,
    }
    blended = modes[blend_mode]()
    out = a * F32(1 - blend_factor) + blended * F32(blend_factor)
    return (np.clip(out, 0, 1).astype(F32),)


@node("JoinImageWithAlpha")
def join_alpha(ctx: NodeContext, image: np.ndarray, alpha: np.ndarray) -> tuple[Any, ...]:
    batch = min(len(image), len(alpha))
    a = F32(1.0) - im.resize_mask(
        _as_f32(alpha).reshape(-1, alpha.shape[-2], alpha.shape[-1]), image.shape[1], image.shape[2]
    )
    return (np.concatenate([_as_f32(image[:batch, :, :, :3]), a[:batch, :, :, None]], axis=3),)


@node("SplitImageWithAlpha")
def split_alpha(ctx: NodeContext, image: np.ndarray) -> tuple[Any, ...]:
    rgb = np.ascontiguousarray(image[..., :3])
    alpha = image[..., 3] if image.shape[3] > 3 else np.ones(image.shape[:3], dtype=F32)
    return rgb, F32(1.0) - alpha


@node("ImageBatch")
def image_batch(ctx: NodeContext, image1: np.ndarray, image2: np.ndarray) -> tuple[Any, ...]:
    if image1.shape[1:] != image2.shape[1:]:
        image2 = _upscale(image2, "bilinear", image1.shape[2], image1.shape[1], "center")
    return (np.concatenate([_as_f32(image1), _as_f32(image2)]),)


@node("RepeatImageBatch")
def repeat_image_batch(ctx: NodeContext, image: np.ndarray, amount: int) -> tuple[Any, ...]:
    return (np.concatenate([_as_f32(image)] * amount),)


@node("PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean")
def primitive(ctx: NodeContext, value: Any) -> tuple[Any, ...]:
    return (value,)


@node("Canny")
def canny(ctx: NodeContext, image: np.ndarray, low_threshold: float, high_threshold: float) -> tuple[Any, ...]:
    grey = _as_f32(image[..., :3]).mean(axis=3)
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]
    gy = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]
    magnitude = np.sqrt(gx * gx + gy * gy)
    edges = np.where(magnitude >= high_threshold, F32(1), np.where(magnitude >= low_threshold, F32(0.5), F32(0)))
    return (np.repeat(edges[..., None], 3, axis=3).astype(F32),)
