"""Video, animation and audio files: what they really are, and a picture to show for each.

Everything is read from the bytes with real decoders (PyAV for video and sound, Pillow for
animated WebP/PNG/GIF), never from a file name: the container is sniffed from its first bytes,
every frame and every audio sample is decoded (a truncated or corrupt file fails here, not in
the browser or on a GPU node), and the limits are checked on what was decoded.

Pure module (no Django): callers pass the limits and store what comes back. Decoding is CPU
work; the upload view calls it in its request thread, the runner in its database thread.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw

POSTER_SIDE = 640  # a poster is shown at the size of the player on the job page
WAVEFORM_SIZE = (640, 120)
WAVEFORM_COLOUR = (11, 92, 173, 255)  # --accent of static/css/site.css
# A decoded stream shorter than its declared length by more than this is a cut-off file.
TRUNCATION_TOLERANCE = 0.05

# Animated pictures are read with Pillow: ffmpeg does not decode animated WebP.
_PICTURE_TYPES = {"WEBP": "image/webp", "PNG": "image/png", "GIF": "image/gif"}

av.logging.set_level(av.logging.PANIC)  # broken uploads are expected here; the errors are ours to report


class MediaRejected(Exception):
    """The file is not what it should be; ``status`` is 413 for a file over a limit, else 400."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Limits:
    """The most a file may hold; None means no limit."""

    max_bytes: int | None = None
    max_seconds: float | None = None
    max_pixels: int | None = None
    max_frames: int | None = None


@dataclass
class MediaInfo:
    """What a video, animation or sound file holds, as decoded."""

    kind: str  # "video" (animations included), "audio" or "image" (a still picture)
    content_type: str
    width: int = 0
    height: int = 0
    duration: float | None = None  # seconds
    frames: int = 0
    frame_rate: float | None = None
    sample_rate: int = 0
    channels: int = 0
    preview: bytes = b""  # WebP: the first frame (video) or the waveform (audio)


def sniff(data: bytes) -> str | None:
    """The content type the first bytes say, for the containers we read; None otherwise."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def probe(data: bytes, *, expect: str | None = None, limits: Limits = Limits()) -> MediaInfo:
    """Decode ``data`` and say what it holds, with a preview. Raises MediaRejected.

    ``expect`` ("video" or "audio") is what the caller asked for: anything else is refused,
    naming what the file really is. Without it (a node's result) any kind is returned, and a
    still picture comes back as kind "image" without a preview (the image code handles those).
    """
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise MediaRejected(f"{len(data)} bytes is more than the {limits.max_bytes} allowed.", 413)
    if not data:
        raise MediaRejected("The file is empty.")
    content_type = sniff(data)
    if content_type is None:
        raise MediaRejected(
            "This is not a video or audio file we can read (MP4, WebM, MOV, WebP, PNG, GIF, WAV, FLAC, MP3, Ogg, M4A)."
        )
    if content_type in _PICTURE_TYPES.values():
        info = _probe_picture(data, content_type, limits)
    else:
        info = _probe_av(data, content_type, limits)
    if expect is not None and info.kind != expect:
        what = {"image": "a still picture", "video": "a video", "audio": "a sound file"}[info.kind]
        raise MediaRejected(f"The file is {what} ({info.content_type}), not {_article(expect)}.")
    return info


def _article(kind: str) -> str:
    return "an audio file" if kind == "audio" else "a video"


def _probe_picture(data: bytes, content_type: str, limits: Limits) -> MediaInfo:
    """An animated WebP, PNG (APNG) or GIF, frame by frame with Pillow."""
    try:
        img = Image.open(io.BytesIO(data))
        frames = getattr(img, "n_frames", 1)
        width, height = img.size
        if frames <= 1:  # a still: the image code decodes it (once)
            return MediaInfo(kind="image", content_type=content_type, width=width, height=height, frames=1)
        _check_pixels(width, height, limits)
        _check_frames(frames, limits)
        total_ms, poster = 0, None
        for index in range(frames):
            img.seek(index)
            img.load()
            total_ms += int(img.info.get("duration") or 0)
            if poster is None:
                poster = img.convert("RGBA")
    except MediaRejected:
        raise
    except Exception:
        raise MediaRejected("The animation cannot be decoded: the file is damaged or cut off.") from None
    duration = total_ms / 1000 if total_ms else None
    _check_seconds(duration, limits)
    return MediaInfo(
        kind="video",
        content_type=content_type,
        width=width,
        height=height,
        duration=duration,
        frames=frames,
        frame_rate=round(frames / duration, 3) if duration else None,
        preview=_webp(poster, POSTER_SIDE),
    )


def _probe_av(data: bytes, content_type: str, limits: Limits) -> MediaInfo:
    if content_type == "audio/wav":
        _check_wav_length(data)
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception:
        raise MediaRejected("The file cannot be decoded: it is damaged, cut off or not a media file.") from None
    try:
        with container:
            if container.streams.video:
                return _decode_video(container, content_type, limits)
            if container.streams.audio:
                return _decode_audio(container, _audio_type(content_type), limits)
    except MediaRejected:
        raise
    except Exception:
        raise MediaRejected("The file cannot be decoded: it is damaged or cut off.") from None
    raise MediaRejected("The file holds neither video nor sound.")


def _check_wav_length(data: bytes) -> None:
    """A WAV header says how many bytes of samples follow; ffmpeg plays a cut-off one quietly."""
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"data":
            if size != 0xFFFFFFFF and offset + 8 + size > len(data):  # 0xFFFFFFFF: a stream of unknown length
                have = len(data) - offset - 8
                raise MediaRejected(f"The file is cut off: {have} of its {size} bytes of sound are there.")
            return
        offset += 8 + size + (size & 1)


def _audio_type(content_type: str) -> str:
    """A sound-only MP4 or WebM is audio/mp4 or audio/webm (what a browser's <audio> expects)."""
    return {"video/mp4": "audio/mp4", "video/webm": "audio/webm", "video/x-matroska": "audio/webm"}.get(
        content_type, content_type
    )


def _declared_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode_video(container, content_type: str, limits: Limits) -> MediaInfo:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    width, height = stream.codec_context.width, stream.codec_context.height
    _check_pixels(width, height, limits)
    declared = _declared_seconds(container, stream)
    _check_seconds(declared, limits)
    frames, poster, first_pts, last_end = 0, None, None, 0.0
    for frame in container.decode(stream):
        frames += 1
        _check_frames(frames, limits)
        if poster is None:
            poster = frame.to_image()
            width, height = frame.width, frame.height
        if frame.time is not None:
            first_pts = frame.time if first_pts is None else min(first_pts, frame.time)
            step = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
            last_end = max(last_end, frame.time + step)
    if frames == 0 or poster is None:
        raise MediaRejected("The video has no frame that can be decoded.")
    rate = float(stream.average_rate) if stream.average_rate else None
    decoded = (last_end - (first_pts or 0.0)) if last_end else (frames / rate if rate else None)
    if stream.frames and frames < stream.frames:
        raise MediaRejected(f"The video is cut off: {frames} of its {stream.frames} frames could be decoded.")
    _check_complete(decoded, declared)
    duration = declared if declared else decoded
    _check_seconds(duration, limits)
    if rate is None and duration:
        rate = frames / duration
    return MediaInfo(
        kind="video",
        content_type=content_type,
        width=width,
        height=height,
        duration=round(duration, 3) if duration else None,
        frames=frames,
        frame_rate=round(rate, 3) if rate else None,
        sample_rate=container.streams.audio[0].codec_context.sample_rate if container.streams.audio else 0,
        channels=container.streams.audio[0].codec_context.channels if container.streams.audio else 0,
        preview=_webp(poster, POSTER_SIDE),
    )


def _decode_audio(container, content_type: str, limits: Limits) -> MediaInfo:
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or 0
    declared = _declared_seconds(container, stream)
    _check_seconds(declared, limits)
    samples, peaks = 0, []
    for frame in container.decode(stream):
        array = frame.to_ndarray()
        if array.size == 0:
            continue
        if not np.issubdtype(array.dtype, np.floating):  # integer PCM: scale to -1…1
            array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
        samples += frame.samples
        peaks.append(float(np.abs(array).max()))
        if limits.max_seconds is not None and rate and samples / rate > limits.max_seconds:
            _check_seconds(samples / rate, limits)
    if samples == 0 or not rate:
        raise MediaRejected("The sound has no sample that can be decoded.")
    decoded = samples / rate
    _check_complete(decoded, declared)
    return MediaInfo(
        kind="audio",
        content_type=content_type,
        duration=round(decoded, 3),
        sample_rate=rate,
        channels=stream.codec_context.channels,
        preview=waveform(peaks),
    )


def _check_complete(decoded: float | None, declared: float | None) -> None:
    """A file whose header promises more than could be decoded was cut off on the way."""
    if decoded is None or not declared:
        return
    if decoded < declared * (1 - TRUNCATION_TOLERANCE) - 0.05:
        raise MediaRejected(f"The file is cut off: {decoded:.2f} s of its {declared:.2f} s could be decoded.")


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if not width or not height:
        raise MediaRejected("The video has no frame size.")
    if limits.max_pixels is not None and width * height > limits.max_pixels:
        raise MediaRejected(f"The frames are {width}×{height} pixels; at most {limits.max_pixels} allowed.", 413)


def _check_frames(frames: int, limits: Limits) -> None:
    if limits.max_frames is not None and frames > limits.max_frames:
        raise MediaRejected(f"The video has more than {limits.max_frames} frames allowed.", 413)


def _check_seconds(seconds: float | None, limits: Limits) -> None:
    if seconds is not None and limits.max_seconds is not None and seconds > limits.max_seconds + 0.01:
        raise MediaRejected(f"It lasts {seconds:.1f} s; at most {limits.max_seconds:g} s allowed.", 413)


def _webp(img: Image.Image, side: int) -> bytes:
    img = img.convert("RGBA") if img.mode in ("RGBA", "LA", "P") else img.convert("RGB")
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=80, method=4)
    return buf.getvalue()


def waveform(peaks: list[float], size: tuple[int, int] = WAVEFORM_SIZE) -> bytes:
    """A WebP of the sound's loudness over time: one bar per column, mirrored about the middle.

    ``peaks`` are the loudest absolute sample (0…1) of each decoded frame, in order."""
    width, height = size
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    middle = height / 2
    draw.line([(0, middle), (width, middle)], fill=WAVEFORM_COLOUR, width=1)
    if peaks:
        values = np.asarray(peaks, dtype=np.float32)
        edges = np.linspace(0, len(values), width + 1)
        for x in range(width):
            lo, hi = int(edges[x]), max(int(edges[x]) + 1, int(math.ceil(edges[x + 1])))
            level = float(np.clip(values[lo:hi].max(), 0, 1)) if lo < len(values) else 0.0
            half = max(0.5, level * (middle - 2))
            draw.line([(x, middle - half), (x, middle + half)], fill=WAVEFORM_COLOUR, width=1)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", lossless=True)
    return buf.getvalue()
