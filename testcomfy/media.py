"""Real video and audio bytes with PyAV: what SaveVideo, SaveWEBM and SaveAudio write, and what
LoadVideo and LoadAudio read. Frames are [N, H, W, 3] float32 in 0…1 (ComfyUI's IMAGE batch);
sound is [channels, samples] float32 in -1…1 with its sample rate (ComfyUI's AUDIO waveform)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np


def _rgb8(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(frame[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8))


def encode_video(
    frames: np.ndarray,
    fps: float,
    *,
    container: str = "mp4",
    codec: str = "libx264",
    audio: dict | None = None,
    options: dict | None = None,
) -> bytes:
    """Frames (and optional sound) as an MP4 (H.264) or WebM (VP9/AV1) file.

    yuv420p needs even sides, as in ComfyUI the last odd row or column is dropped."""
    frames = np.asarray(frames)
    height, width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    buf = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio_stream = None
        if audio is not None:
            audio_stream = out.add_stream("aac" if container == "mp4" else "libopus", rate=48000)
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(_rgb8(frame[:height, :width]), format="rgb24")
            for packet in stream.encode(video_frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio_stream is not None:
            _mux_audio(out, audio_stream, audio["waveform"], audio["sample_rate"])
    return buf.getvalue()


def _mux_audio(out, stream, waveform: np.ndarray, sample_rate: int) -> None:
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 3:
        waveform = waveform[0]
    layout = "stereo" if waveform.shape[0] > 1 else "mono"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(waveform[:2]), format="fltp", layout=layout)
    frame.sample_rate = sample_rate
    frame.pts = None
    resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=stream.codec_context.rate)
    frame_size = stream.codec_context.frame_size or 1024
    fifo = av.AudioFifo()
    for resampled in resampler.resample(frame) + resampler.resample(None):
        fifo.write(resampled)
    while fifo.samples:
        chunk = fifo.read(min(frame_size, fifo.samples), partial=True)
        for packet in stream.encode(chunk):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


AUDIO_FORMATS = {
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "wav": ("wav", "pcm_s16le"),
}


def encode_audio(waveform: np.ndarray, sample_rate: int, fmt: str = "flac") -> bytes:
    """Sound as FLAC (SaveAudio), MP3, Opus in Ogg, or 16-bit WAV."""
    container, codec = AUDIO_FORMATS[fmt]
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 3:
        waveform = waveform[0]
    channels = min(2, waveform.shape[0])
    layout = "stereo" if channels == 2 else "mono"
    rate = 48000 if codec == "libopus" else sample_rate
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(np.clip(waveform[:channels], -1, 1)), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=rate)
        fifo = av.AudioFifo()
        for resampled in resampler.resample(frame) + resampler.resample(None):
            fifo.write(resampled)
        size = stream.codec_context.frame_size or 4096
        while fifo.samples:
            for packet in stream.encode(fifo.read(min(size, fifo.samples), partial=True)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode_audio(path: str) -> tuple[np.ndarray, int]:
    """LoadAudio: the whole file as [channels, samples] float32 and its sample rate."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels or 1
        layout = "stereo" if channels >= 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    data = np.concatenate(chunks, axis=1) if chunks else np.zeros((min(channels, 2), 0), dtype=np.float32)
    return data.astype(np.float32), rate


def decode_video(path: str) -> tuple[np.ndarray, float, dict | None]:
    """LoadVideo: every frame as [N, H, W, 3] float32, the frame rate, and None for the sound."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 24)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    # Sound is not carried through: no stock model-free graph reads it back out of a video.
    return np.stack(frames).astype(np.float32) / 255.0, fps, None


def tone(seconds: float, sample_rate: int = 44100, frequency: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone at half loudness, [channels, samples] float32."""
    t = np.arange(int(round(seconds * sample_rate)), dtype=np.float64) / sample_rate
    wave = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return np.repeat(wave[None], channels, axis=0)
