"""Small real media files for tests, made with PyAV and Pillow (the test ComfyUI's encoders)."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image

from testcomfy import media


def frames(count: int = 8, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Frames that differ (a gradient whose blue grows), [N, H, W, 3] float32."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack(
        [np.stack([xs / width, ys / height, np.full_like(xs, i / count)], axis=-1) for i in range(count)]
    ).astype(np.float32)


@cache
def mp4(count: int = 8, size: tuple[int, int] = (64, 48), fps: float = 8.0) -> bytes:
    return media.encode_video(frames(count, size), fps, container="mp4", codec="libx264")


@cache
def webm(count: int = 8, size: tuple[int, int] = (64, 48), fps: float = 8.0) -> bytes:
    return media.encode_video(frames(count, size), fps, container="webm", codec="libvpx-vp9")


@cache
def sound(seconds: float = 1.0, fmt: str = "flac", rate: int = 44100) -> bytes:
    return media.encode_audio(media.tone(seconds, rate), rate, fmt)


@cache
def animation(fmt: str = "WEBP", count: int = 4, size: tuple[int, int] = (64, 48), frame_ms: int = 250) -> bytes:
    pictures = [Image.fromarray((f * 255).astype("uint8")) for f in frames(count, size)]
    buf = io.BytesIO()
    pictures[0].save(buf, format=fmt, save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()
