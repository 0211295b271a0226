"""Video and audio through the API: uploads probed and refused with 4xx naming the field (and
nothing kept), results stored with what they hold, served with byte ranges and owner checks."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.files import store_result
from jobs.models import JobFile
from tests.factories import make_job, make_workflow, upload_example

from . import media_samples as samples

pytestmark = pytest.mark.django_db


def upload(api, data: bytes, kind: str, name: str = "clip.mp4"):
    return api.multipart("/api/uploads", {"file": SimpleUploadedFile(name, data), "kind": kind})


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_video_upload_is_probed(alice_api):
    response = upload(alice_api, samples.mp4(), "video", "holiday.mp4")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "VIDEO" and body["content_type"] == "video/mp4"
    assert (body["width"], body["height"], body["frame_count"], body["duration"]) == (64, 48, 8, 1.0)
    record = JobFile.objects.get(pk=body["id"])
    assert record.media == "video" and record.file.name.endswith(".mp4") and record.thumbnail.name.endswith(".webp")
    assert body["preview_url"] == f"/api/files/{record.pk}?variant=thumb"


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_gif_and_apng_animations_are_video_inputs(alice_api, fmt):
    body = upload(alice_api, samples.animation(fmt), "video", f"a.{fmt.lower()}").json()
    assert (body["kind"], body["frame_count"], body["content_type"]) == ("VIDEO", 4, f"image/{fmt.lower()}")


def test_audio_upload_is_probed(alice_api):
    body = upload(alice_api, samples.sound(1.5, "wav"), "audio", "voice.wav").json()
    assert (body["kind"], body["content_type"], body["sample_rate"], body["duration"]) == (
        "AUDIO",
        "audio/wav",
        44100,
        1.5,
    )
    assert body["frame_count"] is None


@pytest.mark.parametrize(
    ("data", "kind", "status", "words"),
    [
        (samples.png, "video", 400, "still picture"),
        (lambda: b"#!/bin/sh\necho not a video\n", "video", 400, "not a video or audio"),
        (lambda: samples.mp4()[: len(samples.mp4()) // 2], "video", 400, "cannot be decoded"),
        (lambda: samples.sound(2.0, "flac")[:4000], "audio", 400, "cut off"),
        (samples.mp4, "audio", 400, "a video"),
        (lambda: samples.animation("WEBP"), "video", 400, "LoadVideo"),
    ],
    ids=["still-as-video", "script-as-video", "cut-mp4", "cut-flac", "video-as-audio", "animated-webp-as-video"],
)
def test_bad_media_uploads_are_refused_and_nothing_is_kept(alice_api, settings, data, kind, status, words):
    before = stored_files(settings)
    response = upload(alice_api, data(), kind)
    assert response.status_code == status
    body = response.json()
    assert body["detail"].startswith("file: ") and words in body["detail"]
    assert body["errors"] == {"file": body["detail"].removeprefix("file: ")}
    assert JobFile.objects.count() == 0 and stored_files(settings) == before


def test_media_over_the_site_limits_is_413(alice_api, settings):
    settings.MEDIA_UPLOAD_MAX_SECONDS = 0.5
    response = upload(alice_api, samples.mp4(), "video")
    assert response.status_code == 413 and "0.5 s" in response.json()["detail"]
    settings.MEDIA_UPLOAD_MAX_SECONDS = 300
    settings.MEDIA_UPLOAD_MAX_BYTES = 100
    response = upload(alice_api, samples.sound(), "audio")
    assert response.status_code == 413 and response.json()["detail"].startswith("file:")
    assert JobFile.objects.count() == 0


def test_an_upload_for_a_field_is_checked_against_its_limits_at_once(alice_api):
    upload_example("video-convert")
    long_clip = SimpleUploadedFile("long.mp4", samples.mp4(count=8, fps=0.1))  # 80 s, the field allows 60
    form = {"file": long_clip, "workflow": "video-convert", "field": "video"}
    response = alice_api.multipart("/api/uploads", form)
    assert response.status_code == 413 and "at most 60 s allowed" in response.json()["errors"]["file"]
    assert JobFile.objects.count() == 0
    ok = {"file": SimpleUploadedFile("c.mp4", samples.mp4()), "workflow": "video-convert", "field": "video"}
    body = alice_api.multipart("/api/uploads", ok).json()
    assert body["kind"] == "VIDEO"  # the field's type
    wrong = {"file": SimpleUploadedFile("c.mp4", samples.mp4()), "workflow": "video-convert", "field": "video"}
    response = alice_api.multipart("/api/uploads", {**wrong, "kind": "audio"})
    assert response.status_code == 400 and "kind" in response.json()["errors"]
    for form, status, key in (
        ({"workflow": "video-convert", "field": "fps"}, 400, "field"),
        ({"workflow": "video-convert"}, 400, "field"),
        ({"workflow": "nope", "field": "video"}, 404, None),
    ):
        response = alice_api.multipart("/api/uploads", {"file": SimpleUploadedFile("c.mp4", samples.mp4()), **form})
        assert response.status_code == status, response.json()
        if key:
            assert key in response.json()["errors"]


def _submit(api, slug, inputs):
    return api.post("/api/jobs", {"workflow": slug, "inputs": inputs})


def test_submit_checks_the_fields_own_limits_and_kinds(alice_api, bob_api):
    upload_example("video-convert")
    upload_example("audio-to-flac")
    long_clip = upload(alice_api, samples.mp4(count=8, fps=0.1), "video").json()  # 80 s: over the field's 60 s
    response = _submit(alice_api, "video-convert", {"video": long_clip["id"]})
    assert response.status_code == 400 and "at most 60 s" in response.json()["errors"]["video"]

    sound = upload(alice_api, samples.sound(), "audio").json()
    response = _submit(alice_api, "video-convert", {"video": sound["id"]})
    assert response.status_code == 400 and "kind 'video'" in response.json()["errors"]["video"]
    clip = upload(alice_api, samples.mp4(), "video").json()
    response = _submit(alice_api, "audio-to-flac", {"audio": clip["id"]})
    assert response.status_code == 400 and "kind 'audio'" in response.json()["errors"]["audio"]

    theirs = upload(bob_api, samples.mp4(), "video").json()
    response = _submit(alice_api, "video-convert", {"video": theirs["id"]})
    assert response.status_code == 400 and "upload not found" in response.json()["errors"]["video"]

    assert _submit(alice_api, "video-convert", {"video": clip["id"], "fps": 12}).status_code == 201
    assert _submit(alice_api, "audio-to-flac", {"audio": sound["id"]}).status_code == 201


def test_a_result_of_the_wrong_kind_cannot_feed_a_field(alice, alice_api):
    upload_example("video-convert")
    job = make_job(alice, make_workflow(), status="DONE")
    sound = store_result(job=job, data=samples.sound(), source_ref="output//a.flac")
    clip = store_result(job=job, data=samples.mp4(), source_ref="output//v.mp4")
    response = _submit(alice_api, "video-convert", {"video": str(sound.pk)})
    assert response.status_code == 400 and "that result is audio" in response.json()["errors"]["video"]
    assert _submit(alice_api, "video-convert", {"video": str(clip.pk)}).status_code == 201


@pytest.mark.parametrize(
    ("data", "ref", "kind", "content_type", "extra"),
    [
        (samples.mp4, "output/cp/vid_00001_.mp4", "video", "video/mp4", {"frame_count": 8, "duration": 1.0}),
        (samples.webm, "output/cp/w_00001_.webm", "video", "video/webm", {"frame_count": 8, "frame_rate": 8.0}),
        (lambda: samples.animation("WEBP"), "output/cp/a_00001_.webp", "video", "image/webp", {"frame_count": 4}),
        (lambda: samples.sound(1.0), "output/cp/aud_00001.flac", "audio", "audio/flac", {"sample_rate": 44100}),
        (samples.png, "output/cp/p_00001_.png", "image", "image/png", {"duration": None, "sample_rate": None}),
    ],
    ids=["mp4", "webm", "animated-webp", "flac", "png"],
)
def test_results_are_stored_with_what_they_hold_and_a_preview(alice, alice_api, data, ref, kind, content_type, extra):
    job = make_job(alice, make_workflow(), status="DONE")
    record = store_result(job=job, data=data(), source_ref=ref)
    [output] = alice_api.get(f"/api/jobs/{job.pk}").json()["outputs"]
    assert (output["kind"], output["content_type"], output["size"]) == (kind, content_type, len(data()))
    for key, value in extra.items():
        assert output[key] == value, key
    preview = alice_api.get(output["preview_url"])
    assert preview.status_code == 200 and preview["Content-Type"] == "image/webp"
    served = alice_api.get(output["url"])
    assert served["Content-Type"] == content_type and served["Accept-Ranges"] == "bytes"
    assert served.getvalue() == data()
    assert record.file.name.endswith(ref.rsplit(".", 1)[1])


class TestRanges:
    @pytest.fixture
    def clip(self, alice):
        job = make_job(alice, make_workflow(), status="DONE")
        return store_result(job=job, data=samples.mp4(), source_ref="output//v.mp4")

    def _get(self, api, record, range_header, **headers):
        extra = {"HTTP_RANGE": range_header} if range_header else {}
        extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        return api.client.get(f"/api/files/{record.pk}", **api._headers(extra))

    @pytest.mark.parametrize(
        ("header", "first", "last"),
        [
            ("bytes=0-99", 0, 99),
            ("bytes=500-899", 500, 899),
            ("bytes=-500", None, None),
            ("bytes=1000-", 1000, None),
        ],
        ids=["first-bytes", "middle", "suffix", "open-ended"],
    )
    def test_a_range_is_206_with_exactly_those_bytes(self, alice_api, clip, header, first, last):
        data, size = samples.mp4(), len(samples.mp4())
        if first is None:
            first, last = size - 500, size - 1
        last = size - 1 if last is None else last
        response = self._get(alice_api, clip, header)
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert response["Content-Length"] == str(last - first + 1)
        assert response["Content-Type"] == "video/mp4" and response["Accept-Ranges"] == "bytes"
        assert b"".join(response.streaming_content) == data[first : last + 1]

    def test_a_range_past_the_end_is_clipped(self, alice_api, clip):
        size = len(samples.mp4())
        response = self._get(alice_api, clip, f"bytes={size - 10}-{size + 500}")
        assert response.status_code == 206 and response["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"

    @pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=50-10", "bytes=abc", "bytes=-0"])
    def test_an_unsatisfiable_range_is_416(self, alice_api, clip, header):
        response = self._get(alice_api, clip, header)
        assert response.status_code == 416
        assert response["Content-Range"] == f"bytes */{len(samples.mp4())}"
        assert response.json()["detail"].startswith("Range: ")

    @pytest.mark.parametrize("header", ["", "items=0-5", "bytes=0-1,5-6"])
    def test_no_single_byte_range_gets_the_whole_file(self, alice_api, clip, header):
        response = self._get(alice_api, clip, header)
        assert response.status_code == 200
        assert response.getvalue() == samples.mp4()

    def test_if_range_with_an_old_etag_gets_the_whole_file(self, alice_api, clip):
        etag = self._get(alice_api, clip, "")["ETag"]
        assert self._get(alice_api, clip, "bytes=0-9", if_range=etag).status_code == 206
        assert self._get(alice_api, clip, "bytes=0-9", if_range='"older"').status_code == 200

    def test_owner_checks_hold_for_ranges_and_previews(self, alice_api, bob_api, admin_api, clip):
        for api, status in ((bob_api, 404), (admin_api, 206)):
            assert self._get(api, clip, "bytes=0-9").status_code == status
        assert bob_api.get(f"/api/files/{clip.pk}", variant="thumb").status_code == 404
        assert bob_api.delete(f"/api/files/{clip.pk}").status_code == 404

    def test_nginx_sends_the_body_when_configured(self, alice_api, clip, settings):
        settings.FILES_X_ACCEL_REDIRECT = "/protected/"
        response = self._get(alice_api, clip, "bytes=0-9")
        assert response.status_code == 200 and response.content == b""
        assert response["X-Accel-Redirect"] == f"/protected/{clip.file.name}"
        assert response["Content-Type"] == "video/mp4"
        assert response["X-Content-Type-Options"] == "nosniff"
        preview = alice_api.get(f"/api/files/{clip.pk}", variant="thumb")
        assert preview["X-Accel-Redirect"] == f"/protected/{clip.thumbnail.name}"
