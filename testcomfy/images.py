"""Pixel helpers that follow the real server's numeric rules.

IMAGE is float32 ``[B,H,W,C]``, MASK float32 ``[B,H,W]``. Decoding follows ComfyUI 0.33
(PyAV): 8-bit RGB/RGBA/P are exact ``v/255``, greyscale goes through a float path (``≈ v/256``).
Saving stores ``uint8(clip(255·x))`` computed in float32, which truncates. Tests compare
pixels against these rules, so keep them exact.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

F32 = np.float32


def decode(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Open an image file: ``(rgb [H,W,3], alpha [H,W] or None)`` as float32 in 0..1.

    Raises PIL.UnidentifiedImageError for a file that is not an image, as the real node does.
    """
    with Image.open(path) as opened:
        img = ImageOps.exif_transpose(opened)
        img.load()
    bands = img.getbands()
    if img.mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr"):
        if img.mode == "P":
            has_alpha = "transparency" in img.info
            img = img.convert("RGBA" if has_alpha else "RGB")
        elif img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in bands else "RGB")
        arr = np.asarray(img, dtype=np.uint8)
        rgb = arr[..., :3].astype(F32) / F32(255.0)
        alpha = arr[..., 3].astype(F32) / F32(255.0) if arr.shape[-1] == 4 else None
        return rgb, alpha
    if img.mode in ("L", "LA", "1"):
        grey = np.asarray(img.convert("L"), dtype=np.uint8).astype(F32) / F32(256.0)
        alpha = None
        if img.mode == "LA":
            alpha = np.asarray(img.getchannel("A"), dtype=np.uint8).astype(F32) / F32(255.0)
        return np.repeat(grey[..., None], 3, axis=2), alpha
    if img.mode.startswith("I"):
        values = np.asarray(img, dtype=np.float64)
        grey = (values / 65536.0).clip(0, 1).astype(F32)
        return np.repeat(grey[..., None], 3, axis=2), None
    rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
    return rgba[..., :3].astype(F32) / F32(255.0), rgba[..., 3].astype(F32) / F32(255.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """SaveImage's conversion: ``uint8(clip(255·x))`` in float32 (truncating)."""
    scaled = np.asarray(image, dtype=F32) * F32(255.0)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def to_pil(image: np.ndarray) -> Image.Image:
    """One ``[H,W,C]`` image (C = 1, 3 or 4) as a PIL image, SaveImage-style."""
    data = to_uint8(image)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return Image.fromarray(np.ascontiguousarray(data))


def solid(batch: int, height: int, width: int, values: list[float] | tuple[float, ...]) -> np.ndarray:
    """A constant image as a zero-copy broadcast (cheap even at 4096×4096)."""
    pixel = np.asarray(values, dtype=F32)
    return np.broadcast_to(pixel, (batch, height, width, pixel.shape[0]))


def is_constant(arr: np.ndarray) -> bool:
    """True for broadcast arrays made by ``solid`` (every pixel equal, no memory behind it)."""
    return arr.ndim == 4 and arr.strides[1] == 0 and arr.strides[2] == 0


def _nearest_exact_index(out_size: int, in_size: int) -> np.ndarray:
    scale = in_size / out_size
    idx = np.floor((np.arange(out_size, dtype=np.float64) + 0.5) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1)


def _bilinear_weights(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w = (src - i0).astype(F32)
    return i0, i1, w


_PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
    "bislerp": Image.Resampling.BILINEAR,
}


def resize(arr: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """Resize ``[B,H,W,C]`` like torch interpolate (nearest-exact, bilinear exact; others via PIL)."""
    b, h, w, c = arr.shape
    if (h, w) == (height, width) and method in ("nearest-exact", "nearest", "bilinear"):
        return arr
    if is_constant(arr):
        return np.broadcast_to(arr[:, :1, :1, :], (b, height, width, c))
    if method in ("nearest-exact", "nearest"):
        rows = _nearest_exact_index(height, h)
        cols = _nearest_exact_index(width, w)
        return np.ascontiguousarray(arr[:, rows][:, :, cols])
    if method == "bilinear":
        r0, r1, rw = _bilinear_weights(height, h)
        c0, c1, cw = _bilinear_weights(width, w)
        top = arr[:, r0] * (1 - rw)[None, :, None, None] + arr[:, r1] * rw[None, :, None, None]
        out = top[:, :, c0] * (1 - cw)[None, None, :, None] + top[:, :, c1] * cw[None, None, :, None]
        return out.astype(F32)
    resample = _PIL_FILTERS.get(method, Image.Resampling.BICUBIC)
    out = np.empty((b, height, width, c), dtype=F32)
    for i in range(b):
        for ch in range(c):
            plane = Image.fromarray(np.ascontiguousarray(arr[i, :, :, ch], dtype=F32), mode="F")
            out[i, :, :, ch] = np.asarray(plane.resize((width, height), resample), dtype=F32)
    if method in ("bicubic", "lanczos"):
        np.clip(out, 0.0, 1.0, out=out)
    return out


def resize_mask(mask: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resize ``[B,H,W]``."""
    return resize(mask[..., None], height, width, method)[..., 0]


def center_crop(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """common_upscale's ``crop="center"``: cut the input to the target aspect first."""
    old_h, old_w = arr.shape[1], arr.shape[2]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return arr[:, y : old_h - y, x : old_w - x]


def gaussian_kernel(radius: int, sigma: float) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=F32)
    k = np.exp(-(x**2) / (2 * sigma**2)).astype(F32)
    return k / k.sum()


def blur(arr: np.ndarray, radius: int, sigma: float) -> np.ndarray:
    """Separable gaussian blur with reflect padding (ImageBlur)."""
    if radius <= 0:
        return arr
    k = gaussian_kernel(radius, sigma)
    padded = np.pad(np.asarray(arr, dtype=F32), ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
    tmp = sum(k[i] * padded[:, i : i + padded.shape[1] - 2 * radius, :, :] for i in range(len(k)))
    out = sum(k[i] * tmp[:, :, i : i + tmp.shape[2] - 2 * radius, :] for i in range(len(k)))
    return np.asarray(out, dtype=F32)


def seeded_pattern(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    """A deterministic picture for fake VAEDecode: gradients tinted by the seed."""
    rng = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF)
    tint = rng.random(3).astype(F32)
    ys = np.linspace(0, 1, height, dtype=F32)[:, None]
    xs = np.linspace(0, 1, width, dtype=F32)[None, :]
    base = np.stack(
        [
            xs * tint[0] + (1 - xs) * (1 - tint[0]) * ys,
            ys * tint[1] + (1 - ys) * (1 - tint[1]) * xs,
            (xs + ys) / 2 * tint[2] + (1 - tint[2]) / 2 + 0 * xs * ys,
        ],
        axis=-1,
    )
    out = np.empty((batch, height, width, 3), dtype=F32)
    for i in range(batch):
        out[i] = np.clip(base + F32(0.05 * i), 0, 1)
    return out
