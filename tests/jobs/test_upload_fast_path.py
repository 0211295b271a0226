"""Issue 22: an upload that is already a normalized PNG is kept byte for byte (decoded and
checked, not encoded again); anything else is normalized as before; a still picture's thumbnail
is made the first time someone asks for it, not on the upload's or the job's path."""

from __future__ import annotations

import hashlib
import io
import zlib

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from jobs import files, imaging
from jobs.models import JobFile
from tests.factories import make_job, make_workflow

pytestmark = pytest.mark.django_db


def picture(mode: str = "RGB", size=(48, 32), **save) -> bytes:
    rng = np.random.default_rng(3)
    channels = len(mode)
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    if channels == 1:
        pixels = pixels[..., 0]
    if mode == "RGBA":
        pixels[..., 3] = 255
        pixels[0, 0, 3] = 10  # one pixel not opaque
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, "PNG", **save)
    return buf.getvalue()


def with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """`png` with one more chunk before IEND."""
    chunk = len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def upload(api, data: bytes):
    return api.multipart("/api/uploads", {"file": SimpleUploadedFile("in.png", data), "kind": "image"})


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_normalized_png_is_stored_as_sent(alice_api, mode):
    sent = picture(mode)
    response = upload(alice_api, sent)
    assert response.status_code == 201, response.json()
    record = JobFile.objects.get(pk=response.json()["id"])
    assert files.read_bytes(record) == sent
    assert (record.width, record.height, record.content_type) == (48, 32, "image/png")


def test_pixels_and_harmless_chunks_only_are_kept_as_sent():
    with_dpi = picture(dpi=(72, 72))  # a pHYs chunk
    assert imaging.normalize_upload(with_dpi, max_pixels=10**6).png == with_dpi


def text_chunk() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", '{"secret": "workflow"}')
    return picture(pnginfo=info)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(text_chunk, id="text metadata"),
        pytest.param(
            lambda: with_chunk(picture(), b"eXIf", b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"), id="EXIF"
        ),
        pytest.param(lambda: with_chunk(picture(), b"prVt", b"anything"), id="unknown chunk"),
        pytest.param(lambda: picture() + b"hidden after the end", id="bytes after IEND"),
        pytest.param(lambda: _opaque_rgba(), id="opaque RGBA"),
        pytest.param(lambda: _sixteen_bit(), id="16-bit"),
        pytest.param(lambda: picture(mode="L"), id="grey"),
    ],
)
def test_anything_else_is_normalized_as_before(sent):
    data = sent()
    kept = imaging.normalize_upload(data, max_pixels=10**6)
    assert kept.png != data
    assert kept.png == imaging.normalize_image(data, max_pixels=10**6).png
    assert Image.open(io.BytesIO(kept.png)).mode in ("RGB", "RGBA")


def _opaque_rgba() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (1, 2, 3, 255)).save(buf, "PNG")
    return buf.getvalue()


def _sixteen_bit() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (lambda: picture()[:-40], "truncated"),
        (lambda: picture()[:60] + b"\x00" + picture()[61:], "corrupt"),  # a CRC that does not match
    ],
)
def test_a_broken_png_is_still_refused(alice_api, data, words):
    response = upload(alice_api, data())
    assert response.status_code == 400 and response.json()["errors"]["file"]
    assert words in response.json()["detail"]
    assert not JobFile.objects.exists()


def test_the_upload_thumbnail_is_made_when_first_asked_for_and_once(alice_api):
    body = upload(alice_api, picture(size=(640, 400))).json()
    record = JobFile.objects.get(pk=body["id"])
    assert not record.thumbnail  # nothing made on the upload's path
    assert body["preview_url"] == f"/api/files/{record.pk}?variant=thumb"

    first = alice_api.get(body["preview_url"])
    assert first.status_code == 200 and first["Content-Type"] in ("image/webp", "image/jpeg")
    thumb = Image.open(io.BytesIO(b"".join(first.streaming_content) if first.streaming else first.content))
    assert max(thumb.size) == 320
    record.refresh_from_db()
    made = record.thumbnail.name
    assert made
    again = alice_api.get(body["preview_url"])
    assert again.status_code == 200
    record.refresh_from_db()
    assert record.thumbnail.name == made  # not made twice


def test_a_result_picture_gets_its_thumbnail_on_demand(alice, alice_api):
    job = make_job(alice, make_workflow(), status="RUNNING")
    record = files.store_result(job=job, data=picture(size=(400, 300)), source_ref="output//r.png")
    assert not record.thumbnail and files.has_preview(record)
    response = alice_api.get(f"/api/files/{record.pk}?variant=thumb")
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.thumbnail


def test_a_result_that_cannot_be_decoded_is_served_itself_as_its_preview(alice, alice_api):
    job = make_job(alice, make_workflow(), status="RUNNING")
    broken = picture()[:-40]  # the header is fine, the pixels are cut off
    record = files.store_result(job=job, data=broken, source_ref="output//r.png")
    response = alice_api.get(f"/api/files/{record.pk}?variant=thumb")
    assert response.status_code == 200
    record.refresh_from_db()
    assert not record.thumbnail


def test_the_same_png_sent_again_is_not_decoded_again(monkeypatch):
    sent = picture(size=(40, 30))
    first = imaging.normalize_upload(sent, max_pixels=10**6)
    decoded = []
    monkeypatch.setattr(imaging, "_open_checked", lambda *a, **k: decoded.append(a) or pytest.fail("decoded again"))
    again = imaging.normalize_upload(bytearray(sent), max_pixels=10**6)  # the same bytes, in another buffer
    assert again == first and again.png == sent and (again.width, again.height) == (40, 30)
    assert decoded == []


def test_other_bytes_are_decoded_and_the_pixel_limit_still_holds():
    sent = picture(size=(40, 30))
    imaging.normalize_upload(sent, max_pixels=10**6)
    with pytest.raises(imaging.ImageRejected, match="limit"):
        imaging.normalize_upload(sent, max_pixels=1000)  # 1,200 pixels: refused, known or not
    corrupt = sent[:-30] + bytes(18) + sent[-12:]  # the last IDAT's tail zeroed: its CRC fails
    for _ in range(2):  # a refused file is never remembered
        with pytest.raises(imaging.ImageRejected):
            imaging.normalize_upload(corrupt, max_pixels=10**6)


def test_a_normalized_copy_is_not_remembered(monkeypatch):
    """Only PNGs kept as sent skip the decode: a picture that is normalized is decoded (and
    encoded) every time, its bytes being another file than the one stored."""
    data = text_chunk()
    imaging.normalize_upload(data, max_pixels=10**6)
    decoded = []
    real = imaging._open_checked
    monkeypatch.setattr(imaging, "_open_checked", lambda *a, **k: decoded.append(1) or real(*a, **k))
    assert imaging.normalize_upload(data, max_pixels=10**6).png != data
    assert decoded == [1]


def test_a_re_sent_upload_is_stored_as_before(alice_api, monkeypatch):
    sent = picture(size=(24, 16))
    first = upload(alice_api, sent)
    monkeypatch.setattr(imaging, "_open_checked", lambda *a, **k: pytest.fail("decoded again"))
    second = upload(alice_api, sent)
    assert first.status_code == second.status_code == 201, second.json()
    records = JobFile.objects.filter(pk__in=[first.json()["id"], second.json()["id"]])
    assert len(records) == 2
    for record in records:
        assert files.read_bytes(record) == sent
        assert (record.width, record.height, record.content_type) == (24, 16, "image/png")


@pytest.mark.parametrize("sent", [pytest.param(picture, id="kept as sent"), pytest.param(text_chunk, id="normalized")])
def test_a_stored_upload_s_digest_is_of_its_stored_bytes(alice_api, sent):
    """The digest of the sent bytes serves a picture kept as sent; a normalized one is hashed as stored."""
    data = sent()
    for _ in range(2):  # the second time from the remembered picture, if kept
        response = upload(alice_api, data)
        assert response.status_code == 201, response.json()
        record = JobFile.objects.get(pk=response.json()["id"])
        assert record.sha256 == hashlib.sha256(files.read_bytes(record)).hexdigest()
