"""Generators of real-world image and mask variants for tests/jobs/test_imaging.py.

Everything is built in memory with Pillow/numpy, deterministically (fixed seeds).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    """Return ``img`` saved as ``fmt`` (Pillow format name) with ``params``."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def gray(arr) -> Image.Image:
    """Return a mode "L" image from a 2-D array-like of 0..255."""
    return Image.fromarray(np.asarray(arr, dtype=np.uint8), "L")


def half_mask(w: int, h: int, *, right: bool = True) -> np.ndarray:
    """Return a (h, w) uint8 array that is 255 on the right (or left) half, 0 elsewhere."""
    arr = np.zeros((h, w), dtype=np.uint8)
    if right:
        arr[:, w // 2 :] = 255
    else:
        arr[:, : w // 2] = 255
    return arr


def quadrant_mask(w: int, h: int) -> np.ndarray:
    """Return a (h, w) uint8 array that is 255 in the top-left quadrant only."""
    arr = np.zeros((h, w), dtype=np.uint8)
    arr[: h // 2, : w // 2] = 255
    return arr


def jpeg_with_orientation(arr: np.ndarray, orientation: int, quality: int = 95) -> bytes:
    """Return a JPEG of the grey ``arr`` (as stored) carrying EXIF Orientation ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(gray(arr).convert("RGB"), "JPEG", quality=quality, exif=exif.tobytes())


def rgba_strokes(w: int, h: int, *, bg=(0, 0, 0, 0), stroke=(0, 0, 0, 255)) -> np.ndarray:
    """Return an (h, w, 4) RGBA array: ``bg`` everywhere, ``stroke`` on a horizontal band.

    The band covers rows h//4 .. h//2 - 1 (full width) and, for a second colour test, a
    vertical band at columns 3w//4 .. w-1 is painted with the same stroke.
    """
    arr = np.zeros((h, w, 4), dtype=np.uint8)
    arr[:, :] = bg
    arr[h // 4 : h // 2, :] = stroke
    arr[:, 3 * w // 4 :] = stroke
    return arr


def coloured_strokes_on_white_transparent(w: int, h: int) -> bytes:
    """RGBA PNG: white fully transparent background, opaque red and blue strokes."""
    arr = np.zeros((h, w, 4), dtype=np.uint8)
    arr[:, :] = (255, 255, 255, 0)
    arr[h // 4 : h // 2, :] = (255, 0, 0, 255)  # red band
    arr[:, 3 * w // 4 :] = (0, 0, 255, 255)  # blue band
    return encode(Image.fromarray(arr, "RGBA"), "PNG")


def palette_gif(arr: np.ndarray) -> bytes:
    """Return a palette GIF where 0 → index 0 (black) and 255 → index 1 (white)."""
    idx = (np.asarray(arr) >= 128).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
    return encode(img, "GIF")


def animated_gif(first: np.ndarray, second: np.ndarray) -> bytes:
    """Return a two-frame GIF whose frames are the grey arrays ``first`` and ``second``."""
    frames = [gray(first).convert("P"), gray(second).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def png16(arr16: np.ndarray) -> bytes:
    """Return a 16-bit grayscale PNG (Pillow mode I;16) of the uint16 array ``arr16``."""
    img = Image.fromarray(np.asarray(arr16, dtype=np.uint16))
    assert img.mode == "I;16", img.mode
    return encode(img, "PNG")


def noisy_jpeg_halves(w: int, h: int, *, low: int = 100, high: int = 156, amp: int = 10) -> bytes:
    """Return a grey JPEG: left half ≈ ``low``, right half ≈ ``high``, ± ``amp`` noise."""
    rng = np.random.default_rng(1234)
    arr = np.full((h, w), low, dtype=np.int32)
    arr[:, w // 2 :] = high
    arr += rng.integers(-amp, amp + 1, size=arr.shape)
    return encode(gray(np.clip(arr, 0, 255)), "JPEG", quality=90)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """Return one PNG chunk with its length and CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bomb(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header claims ``width``×``height`` 8-bit grey pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def noise_rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    """Return an RGB noise image (compresses badly: good for byte-limit tests)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
