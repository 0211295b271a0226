"""Reading video, animations and sound from their bytes (jobs.media): what they hold, their
previews, and refusing files that lie about what they are, are too big, or are cut off."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from jobs import media
from jobs.media import Limits, MediaRejected

from . import media_samples as samples


@pytest.mark.parametrize(
    ("make", "kind", "content_type", "details"),
    [
        (
            samples.mp4,
            "video",
            "video/mp4",
            {"frames": 8, "width": 64, "height": 48, "duration": 1.0, "frame_rate": 8.0},
        ),
        (samples.webm, "video", "video/webm", {"frames": 8, "width": 64, "height": 48, "duration": 1.0}),
        (lambda: samples.animation("WEBP"), "video", "image/webp", {"frames": 4, "duration": 1.0, "frame_rate": 4.0}),
        (lambda: samples.animation("PNG"), "video", "image/png", {"frames": 4, "duration": 1.0}),
        (lambda: samples.animation("GIF"), "video", "image/gif", {"frames": 4, "duration": 1.0}),
        (lambda: samples.sound(1.0, "flac"), "audio", "audio/flac", {"duration": 1.0, "sample_rate": 44100}),
        (lambda: samples.sound(1.0, "wav"), "audio", "audio/wav", {"duration": 1.0, "sample_rate": 44100}),
        (lambda: samples.sound(1.0, "mp3"), "audio", "audio/mpeg", {"sample_rate": 44100}),
        (lambda: samples.sound(1.0, "opus"), "audio", "audio/ogg", {"sample_rate": 48000}),
    ],
    ids=["mp4", "webm", "webp", "apng", "gif", "flac", "wav", "mp3", "opus"],
)
def test_probe_reads_what_the_file_holds(make, kind, content_type, details):
    info = media.probe(make(), expect=kind)
    assert (info.kind, info.content_type) == (kind, content_type)
    for key, value in details.items():
        assert getattr(info, key) == value, key
    preview = Image.open(io.BytesIO(info.preview))
    assert preview.format == "WEBP"
    if kind == "video":
        assert preview.size == (64, 48)  # the first frame, never upscaled
    else:
        assert preview.size == media.WAVEFORM_SIZE


def test_waveform_follows_the_loudness():
    quiet_then_loud = media.waveform([0.05] * 50 + [1.0] * 50, size=(100, 40))
    img = Image.open(io.BytesIO(quiet_then_loud)).convert("RGBA")
    column_height = [sum(1 for y in range(40) if img.getpixel((x, y))[3]) for x in (10, 90)]
    assert column_height[0] < 6 < 30 < column_height[1]


def _cut(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


REFUSED = [
    # (case, bytes, expect, limits, status, words in the message)
    ("text named .mp4", lambda: b"just some text, honestly a video", "video", Limits(), 400, "not a video or audio"),
    ("empty", lambda: b"", "video", Limits(), 400, "empty"),
    ("still PNG as video", samples.png, "video", Limits(), 400, "still picture"),
    ("sound as video", lambda: samples.sound(1.0, "flac"), "video", Limits(), 400, "sound file"),
    ("video as sound", samples.mp4, "audio", Limits(), 400, "a video"),
    ("animation as sound", lambda: samples.animation("WEBP"), "audio", Limits(), 400, "a video"),
    ("MP4 header, garbage", lambda: samples.mp4()[:32] + b"\0" * 4000, "video", Limits(), 400, "cannot be decoded"),
    ("over max_bytes", samples.mp4, "video", Limits(max_bytes=1000), 413, "bytes"),
    ("over max_seconds (video)", samples.mp4, "video", Limits(max_seconds=0.5), 413, "0.5 s"),
    ("over max_seconds (sound)", lambda: samples.sound(2.0, "flac"), "audio", Limits(max_seconds=1.0), 413, "1 s"),
    ("over max_pixels", samples.mp4, "video", Limits(max_pixels=64 * 47), 413, "64×48"),
    ("over max_frames", samples.mp4, "video", Limits(max_frames=7), 413, "7 frames"),
    ("animation over max_frames", lambda: samples.animation("GIF"), "video", Limits(max_frames=3), 413, "3 frames"),
    ("cut MP4", lambda: _cut(samples.mp4()), "video", Limits(), 400, "cannot be decoded"),
    ("cut WebM", lambda: _cut(samples.webm(), 0.75), "video", Limits(), 400, "cut off"),
    ("cut FLAC", lambda: _cut(samples.sound(2.0, "flac")), "audio", Limits(), 400, "cut off"),
    ("cut WAV", lambda: _cut(samples.sound(2.0, "wav")), "audio", Limits(), 400, "cut off"),
    ("cut MP3", lambda: _cut(samples.sound(2.0, "mp3")), "audio", Limits(), 400, "cut off"),
    ("cut animated WebP", lambda: _cut(samples.animation("WEBP")), "video", Limits(), 400, "damaged or cut off"),
    ("cut APNG", lambda: _cut(samples.animation("PNG"), 0.8), "video", Limits(), 400, "damaged or cut off"),
]


@pytest.mark.parametrize(("case", "make", "expect", "limits", "status", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_probe_refuses(case, make, expect, limits, status, words):
    with pytest.raises(MediaRejected) as caught:
        media.probe(make(), expect=expect, limits=limits)
    assert caught.value.status == status
    assert words in caught.value.message, caught.value.message


def test_limits_that_hold_pass():
    info = media.probe(samples.mp4(), expect="video", limits=Limits(10**6, 1.0, 64 * 48, 8))
    assert info.frames == 8


def test_a_still_picture_is_an_image_without_a_preview():
    info = media.probe(samples.png())
    assert (info.kind, info.preview) == ("image", b"")
