"""Video and audio nodes: the model-free ones run for real (real MP4/WebM/FLAC bytes written with
PyAV, as ComfyUI's do), the model ones are faked with real media of the right kind.

Output names and UI dicts follow the recording (`../shared/comfy/transcripts/media_outputs.json`):
SaveVideo and SaveWEBM give ``{"images": [...], "animated": [true]}``, SaveAudio gives
``{"audio": [...]}`` with names like ``aud_00002.flac`` (no underscore after the counter).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import media
from .base import NodeContext, Out, node
from .models import make_latent

F32 = np.float32
AUDIO_RATE = 44100  # Stable Audio's VAE gives 44.1 kHz stereo


@dataclass
class Video:
    """ComfyUI's VIDEO object: frames, their rate, and the sound if any."""

    images: np.ndarray
    fps: float
    audio: dict[str, Any] | None = None


def _audio(waveform: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """An AUDIO value: ``waveform`` is [batch, channels, samples]."""
    waveform = np.asarray(waveform, dtype=F32)
    return {
        "waveform": waveform[None] if waveform.ndim == 2 else waveform,
        "sample_rate": sample_rate,
    }


@node("LoadAudio")
def load_audio(ctx: NodeContext, audio: str) -> tuple[Any, ...]:
    waveform, rate = media.decode_audio(ctx.folders.annotated_path(audio))
    return (_audio(waveform[None], rate),)


@node("LoadVideo")
def load_video(ctx: NodeContext, file: str) -> tuple[Any, ...]:
    frames, fps, sound = media.decode_video(ctx.folders.annotated_path(file))
    return (Video(frames, fps, sound),)


@node("CreateVideo")
def create_video(
    ctx: NodeContext, images: np.ndarray, fps: float, audio: dict[str, Any] | None = None, **_: Any
) -> tuple[Any, ...]:
    return (Video(np.asarray(images, dtype=F32), float(fps), audio),)


@node("GetVideoComponents")
def get_video_components(ctx: NodeContext, video: Video) -> tuple[Any, ...]:
    audio = video.audio or _audio(np.zeros((1, 1, 0), dtype=F32), AUDIO_RATE)
    return video.images, audio, float(video.fps), len(video.images), "auto"


def _save_name(ctx: NodeContext, prefix: str, frames: np.ndarray | None, ext: str, underscore: bool = True):
    height, width = (frames.shape[1], frames.shape[2]) if frames is not None else (0, 0)
    folder, filename, counter, subfolder = ctx.folders.save_image_path(prefix, ctx.folders.output, width, height)
    name = f"{filename}_{counter:05}{'_' if underscore else ''}.{ext}"
    return os.path.join(folder, name), {"filename": name, "subfolder": subfolder, "type": "output"}


@node("SaveVideo")
def save_video(
    ctx: NodeContext, video: Video, filename_prefix: str = "video/ComfyUI", format: str = "auto", codec: str = "auto"
) -> Out:
    container = {"auto": "mp4", "mp4": "mp4", "mkv": "matroska", "webm": "webm"}.get(format)
    if container is None:  # the real server's validation lets an unknown key through; SaveVideo fails
        raise ValueError(f"Unsupported format: {format}")
    encoder = "libvpx-vp9" if container == "webm" else "libx264"
    path, entry = _save_name(ctx, filename_prefix, video.images, {"matroska": "mkv"}.get(container, container))
    data = media.encode_video(video.images, video.fps, container=container, codec=encoder, audio=video.audio)
    with open(path, "wb") as f:
        f.write(data)
    return Out((video,), {"images": [entry], "animated": [True]})


@node("SaveWEBM")
def save_webm(
    ctx: NodeContext,
    images: np.ndarray,
    filename_prefix: str = "ComfyUI",
    codec: str = "vp9",
    fps: float = 24.0,
    **_: Any,
) -> Out:
    path, entry = _save_name(ctx, filename_prefix, images, "webm")
    encoder = "libsvtav1" if codec == "av1" else "libvpx-vp9"
    with open(path, "wb") as f:
        f.write(media.encode_video(images, fps, container="webm", codec=encoder))
    return Out((images,), {"images": [entry], "animated": [True]})


@node("SaveAudio", "SaveAudioMP3", "SaveAudioOpus", "PreviewAudio")
def save_audio(ctx: NodeContext, audio: dict[str, Any], filename_prefix: str = "audio/ComfyUI", **_: Any) -> Out:
    fmt = {"SaveAudioMP3": "mp3", "SaveAudioOpus": "opus"}.get(ctx.class_type, "flac")
    temp = ctx.class_type == "PreviewAudio"
    base = ctx.folders.temp if temp else ctx.folders.output
    if temp:
        filename_prefix = "ComfyUI" + ctx.preview_suffix(ctx.node_id)
    folder, filename, counter, subfolder = ctx.folders.save_image_path(filename_prefix, base, 0, 0)
    results = []
    for batch_number, waveform in enumerate(np.asarray(audio["waveform"], dtype=F32)):
        name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}.{'ogg' if fmt == 'opus' else fmt}"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(media.encode_audio(waveform, int(audio["sample_rate"]), fmt))
        results.append({"filename": name, "subfolder": subfolder, "type": "temp" if temp else "output"})
        counter += 1
    return Out((audio,), {"audio": results})


# --- model fakes: latents that know how long they are, decoded to real frames or sound ---


@node("EmptyLatentAudio")
def empty_latent_audio(ctx: NodeContext, seconds: float, batch_size: int = 1) -> tuple[Any, ...]:
    length = max(1, round(seconds * AUDIO_RATE / 2048))
    return ({"samples": np.zeros((batch_size, 64, length), dtype=F32), "type": "audio", "seconds": float(seconds)},)


@node("VAEDecodeAudio")
def vae_decode_audio(ctx: NodeContext, samples: dict[str, Any], vae: Any = None) -> tuple[Any, ...]:
    batch = samples["samples"].shape[0]
    seconds = float(samples.get("seconds") or samples["samples"].shape[-1] * 2048 / AUDIO_RATE)
    seed = int(samples.get("seed", 0))
    waves = [media.tone(seconds, AUDIO_RATE, 220.0 + (seed + i) % 12 * 55.0, channels=2) for i in range(batch)]
    return (_audio(np.stack(waves), AUDIO_RATE),)


def _video_latent(batch: int, height: int, width: int, length: int, **extra: Any) -> dict[str, Any]:
    return make_latent(batch, height, width, 16, frames=int(length), **extra)


@node("WanImageToVideo")
def wan_image_to_video(
    ctx: NodeContext, positive: Any, negative: Any, width: int, height: int, length: int, batch_size: int = 1, **_: Any
) -> tuple[Any, ...]:
    return positive, negative, _video_latent(batch_size, height, width, length)


@node("EmptyLTXVLatentVideo", "EmptyHunyuanLatentVideo", "EmptyCosmosLatentVideo")
def empty_video_latent(ctx: NodeContext, width: int, height: int, length: int, batch_size: int = 1) -> tuple[Any, ...]:
    return (_video_latent(batch_size, height, width, length),)


@node("LTXVImgToVideo")
def ltxv_img_to_video(
    ctx: NodeContext, positive: Any, negative: Any, width: int, height: int, length: int, batch_size: int = 1, **_: Any
) -> tuple[Any, ...]:
    return positive, negative, _video_latent(batch_size, height, width, length)
