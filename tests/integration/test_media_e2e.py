"""Video, animation and audio end to end: uploads through the API, the bundled model-free media
workflows run on the test ComfyUI, results stored with what they hold and served with ranges.
Every stored file is decoded again here (PyAV, Pillow) and checked against what was asked."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from jobs.models import JobFile
from nodes.models import ComfyNode
from testcomfy import media as test_media
from tests.factories import upload_example
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _png(size=(64, 48)) -> bytes:
    img = Image.new("RGB", size, (30, 160, 90))
    img.paste((220, 30, 30), (0, 0, size[0] // 2, size[1] // 2))  # not symmetric: the flips differ
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _upload(api: HttpApi, data: bytes, kind: str, name: str, content_type: str) -> dict:
    response = api.http.post("/api/uploads", files={"file": (name, data, content_type)}, data={"kind": kind})
    assert response.status_code == 201, response.text
    return response.json()


def _decode_video(data: bytes) -> tuple[int, tuple[int, int], float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return len(frames), (frames[0].width, frames[0].height), float(stream.average_rate)


def _decode_audio(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)), stream.codec_context.sample_rate


def test_video_animation_and_audio_results_and_inputs(stack_factory, user_factory):
    stack = stack_factory(nodes=1, node_args={"cache_none": True})
    user_factory("alice")
    user_factory("bob")
    for slug in ("frames-to-video", "flipbook-webp", "audio-to-flac", "video-convert"):
        upload_example(slug)
    ComfyNode.objects.create(name="n0", base_url=stack.nodes[0].url)
    api = HttpApi(stack.web_url, "alice")

    picture = api.upload(_png(), "image")
    clip = test_media.encode_video(
        [[[[x / 64, y / 48, i / 8] for x in range(64)] for y in range(48)] for i in range(8)], 8.0
    )
    clip_upload = _upload(api, clip, "video", "clip.mp4", "video/mp4")
    assert clip_upload["content_type"] == "video/mp4" and clip_upload["frame_count"] == 8
    assert clip_upload["duration"] == 1.0 and (clip_upload["width"], clip_upload["height"]) == (64, 48)
    wav = test_media.encode_audio(test_media.tone(1.5, 44100), 44100, "wav")
    sound_upload = _upload(api, wav, "audio", "tone.wav", "audio/wav")
    assert sound_upload["content_type"] == "audio/wav" and sound_upload["sample_rate"] == 44100

    jobs = {
        "video": api.submit("frames-to-video", {"image": picture, "frames": 8, "fps": 8}),
        "animation": api.submit("flipbook-webp", {"image": picture, "fps": 2, "lossless": True}),
        "audio": api.submit("audio-to-flac", {"audio": sound_upload["id"]}),
        "video_in": api.submit("video-convert", {"video": clip_upload["id"], "fps": 4}),
    }
    done = {name: finished(api, job["id"], timeout=90) for name, job in jobs.items()}
    for name, job in done.items():
        assert job["status"] == "DONE", (name, job)

    [video] = done["video"]["outputs"]
    assert (video["kind"], video["content_type"], video["frame_count"]) == ("video", "video/mp4", 8)
    assert (video["width"], video["height"], video["duration"]) == (64, 48, 1.0)
    data = api.http.get(video["url"]).content
    assert _decode_video(data) == (8, (64, 48), 8.0)
    poster = Image.open(io.BytesIO(api.http.get(video["preview_url"]).content))
    assert poster.format == "WEBP" and poster.size == (64, 48)
    # Seeking: the player asks for ranges.
    part = api.http.get(video["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"

    [animation] = done["animation"]["outputs"]
    assert (animation["kind"], animation["content_type"], animation["frame_count"]) == ("video", "image/webp", 4)
    assert animation["duration"] == 2.0
    webp = Image.open(io.BytesIO(api.http.get(animation["url"]).content))
    assert webp.n_frames == 4 and webp.size == (64, 48)

    [sound] = done["audio"]["outputs"]
    assert (sound["kind"], sound["content_type"], sound["sample_rate"]) == ("audio", "audio/flac", 44100)
    assert sound["duration"] == 1.5
    assert _decode_audio(api.http.get(sound["url"]).content) == (round(1.5 * 44100), 44100)
    waveform = Image.open(io.BytesIO(api.http.get(sound["preview_url"]).content))
    assert waveform.format == "WEBP" and waveform.size == (640, 120)

    [converted] = done["video_in"]["outputs"]
    assert (converted["kind"], converted["frame_count"], converted["duration"]) == ("video", 8, 2.0)
    assert _decode_video(api.http.get(converted["url"]).content) == (8, (64, 48), 4.0)

    stored = {f.media for f in JobFile.objects.filter(kind=JobFile.Kind.RESULT)}
    assert stored == {"video", "audio"}

    # Another user gets nothing of it, ranges and previews included.
    bob = HttpApi(stack.web_url, "bob")
    for url in (video["url"], video["preview_url"], sound["url"]):
        assert bob.http.get(url, headers={"Range": "bytes=0-9"}).status_code == 404
