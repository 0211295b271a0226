"""Storing files: user uploads (normalized on the way in, off the request threads) and result
images from nodes."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction

from core.errors import InvalidInput, TooLarge
from jobs import decoding, imaging, storage
from jobs.models import JobFile

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}


def store_upload(*, owner, data: bytes, kind: str, filename: str = "") -> JobFile:
    """Check and store an uploaded image or mask. Raises TooLarge (413: too many bytes, or more
    than the owner's storage quota), InvalidInput (400) or TooManyRequests (429: too many
    uploads being decoded, see jobs/decoding.py).

    Images are stored normalized (EXIF orientation applied, RGB/RGBA PNG). Masks are stored
    as sent: they are normalized against their image's size at run time.
    """
    kind = kind.upper()
    if kind not in (JobFile.Kind.IMAGE, JobFile.Kind.MASK):
        raise InvalidInput("kind: must be 'image' or 'mask'.", errors={"kind": "must be 'image' or 'mask'"})
    # What would be refused anyway is refused at once, from the header alone, on this thread.
    _checked(imaging.check_header, data, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS)
    storage.check_room_for_upload(owner, len(data))
    prepared = decoding.run(owner.pk, _checked, _prepare_upload, data, kind)
    storage.check_room_for_upload(owner, len(prepared.data), fresh=True)  # as stored, seconds later
    record = JobFile(
        owner=owner,
        kind=kind,
        original_name=_safe_name(filename),
        content_type=prepared.content_type,
        width=prepared.width,
        height=prepared.height,
        size=len(prepared.data),
        sha256=hashlib.sha256(prepared.data).hexdigest(),
    )
    record.file.save(f"upload{_ext(prepared.content_type)}", ContentFile(prepared.data), save=False)
    record.thumbnail.save(f"thumb{_ext(prepared.thumb_type)}", ContentFile(prepared.thumb), save=False)
    record.save()
    return record


@dataclass(frozen=True)
class PreparedUpload:
    data: bytes
    width: int
    height: int
    content_type: str
    thumb: bytes
    thumb_type: str


def _prepare_upload(data: bytes, kind: str) -> PreparedUpload:
    """The decoding work (seconds for a large image): run in a decoding thread, no database."""
    # One decode each (check_header has checked the byte count already).
    if kind == JobFile.Kind.IMAGE:
        normalized, thumb, thumb_type = imaging.normalize_image_with_thumbnail(
            data, max_pixels=settings.UPLOAD_MAX_PIXELS
        )
        return PreparedUpload(normalized.png, normalized.width, normalized.height, "image/png", thumb, thumb_type)
    info, thumb, thumb_type = imaging.inspect_with_thumbnail(data, max_pixels=settings.UPLOAD_MAX_PIXELS)
    return PreparedUpload(data, info.width, info.height, info.content_type, thumb, thumb_type)


def _checked(work, *args, **kwargs):
    """``work``'s result, its ImageRejected as the API's TooLarge (413) or InvalidInput (400)."""
    try:
        return work(*args, **kwargs)
    except imaging.ImageRejected as exc:
        error_class = TooLarge if exc.status == 413 else InvalidInput
        raise error_class(f"file: {exc.message}", errors={"file": exc.message}) from exc


def store_result(*, job, data: bytes, source_ref: str) -> JobFile | None:
    """Store one output image of a job once (a second collection of the same file is a no-op).

    "Once" is the database's unique constraint, not a query first: a second collection is rare
    (recovery after a crash), a query per result is not."""
    source_ref = source_ref.replace("\x00", "")[:500]  # a node's names are not trusted either
    try:
        info, thumb, thumb_type = imaging.inspect_with_thumbnail(data, max_pixels=10**9)
        content_type, width, height = info.content_type, info.width, info.height
    except imaging.ImageRejected:  # not an image we can preview: keep the bytes all the same
        thumb, thumb_type, content_type, width, height = b"", "", "application/octet-stream", 0, 0
    record = JobFile(
        owner_id=job.user_id,
        job=job,
        kind=JobFile.Kind.RESULT,
        source_ref=source_ref,
        original_name=_safe_name(source_ref.rsplit("/", 1)[-1]),
        content_type=content_type,
        width=width,
        height=height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    record.file.save(f"result{_ext(content_type)}", ContentFile(data), save=False)
    if thumb:
        record.thumbnail.save(f"thumb{_ext(thumb_type)}", ContentFile(thumb), save=False)
    try:
        # A savepoint only inside a transaction (a failed INSERT would spoil it); alone, the
        # INSERT is its own transaction and a BEGIN/COMMIT round trip would buy nothing.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            record.save(force_insert=True)
    except IntegrityError:  # stored already (an earlier or a racing collection)
        delete_stored(record)
        return None
    return record


def delete_stored(record: JobFile) -> None:
    for field in (record.file, record.thumbnail):
        if field:
            field.storage.delete(field.name)


def delete_files(records) -> None:
    for record in list(records):
        delete_stored(record)
        record.delete()


def read_bytes(record: JobFile) -> bytes:
    with record.file.open("rb") as f:
        return f.read()


def _ext(content_type: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/webp": ".webp",
        "image/gif": ".gif",
        "image/bmp": ".bmp",
    }.get(content_type, ".bin")


def _safe_name(name: str) -> str:
    """Keep a display name only: no directories, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:200]
    return "" if name.strip(". ") == "" else name


def store_copy(record: JobFile, *, owner) -> JobFile:
    """A copy of an input file for another job (retry with the same inputs)."""
    copy = JobFile(
        owner=owner,
        kind=record.kind,
        original_name=record.original_name,
        content_type=record.content_type,
        width=record.width,
        height=record.height,
        size=record.size,
        sha256=record.sha256,
    )
    copy.file.save(f"copy{_ext(record.content_type)}", ContentFile(read_bytes(record)), save=False)
    if record.thumbnail:
        with record.thumbnail.open("rb") as f:
            copy.thumbnail.save(record.thumbnail.name.rsplit("/", 1)[-1], ContentFile(f.read()), save=False)
    copy.save()
    return copy
