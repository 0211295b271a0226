"""Storing files: user uploads (checked on the way in, decoded off the request threads) and
result files from nodes."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from core.errors import InvalidInput, TooLarge
from jobs import decoding, imaging, media, queries, storage
from jobs.models import JobFile

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}


UPLOAD_KINDS = ("image", "mask", "video", "audio")
# Animations that play here but that ComfyUI's LoadVideo (FFmpeg) cannot read.
UNLOADABLE_VIDEO = {
    "image/webp": "An animated WebP cannot be read by ComfyUI's LoadVideo; upload an MP4, WebM, MOV, GIF or APNG."
}


def check_sent_size(size: int | None, kind: str, *, name: str = "file") -> None:
    """TooLarge (413 naming `name`) for a file part over the site's byte limit for its kind, from
    its declared size: refused before its bytes are read or decoded."""
    limit = settings.MEDIA_UPLOAD_MAX_BYTES if kind.lower() in ("video", "audio") else settings.UPLOAD_MAX_BYTES
    if size and size > limit:
        raise TooLarge(f"{name}: {size} bytes is more than the {limit} allowed.", errors={name: "too large"})


def store_upload(*, owner, data: bytes, kind: str, filename: str = "", limits: dict | None = None) -> JobFile:
    """Check and store an uploaded image, mask, video or sound. Raises TooLarge (413: too many
    bytes, or more than the owner's storage quota), InvalidInput (400), naming the field
    ``file``, or TooManyRequests (429: too many uploads being decoded, see jobs/decoding.py);
    nothing is kept then.

    Images are stored normalized (EXIF orientation applied, RGB/RGBA PNG). Masks are stored
    as sent: they are normalized against their image's size at run time. Video and sound are
    stored as sent, once decoded whole (``jobs.media``); ``limits`` are a form field's own
    (max_bytes, max_seconds, max_pixels, max_frames), within the site's.
    """
    kind = kind.upper()
    if kind in (JobFile.Kind.VIDEO, JobFile.Kind.AUDIO):
        return _store_media_upload(owner=owner, data=data, kind=kind, filename=filename, limits=limits or {})
    if kind not in (JobFile.Kind.IMAGE, JobFile.Kind.MASK):
        choices = ", ".join(repr(k) for k in UPLOAD_KINDS)
        raise InvalidInput(f"kind: must be one of {choices}.", errors={"kind": f"must be one of {choices}"})
    # What would be refused anyway is refused at once, from the header alone, on this thread.
    _format, width, height = _checked(
        imaging.check_header, data, max_bytes=settings.UPLOAD_MAX_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS
    )
    storage.check_room_for_upload(owner, len(data))
    inline = width * height <= settings.UPLOAD_INLINE_PIXELS
    sent_sha256 = hashlib.sha256(data).hexdigest()
    if inline:
        # A small picture decodes in a few ms, less than handing it to a decoding thread and
        # waiting for it (behind larger ones, at a lower priority) would cost.
        prepared = _checked(_prepare_upload, data, kind, sent_sha256)
    else:
        prepared = decoding.run(owner.pk, _checked, _prepare_upload, data, kind, sent_sha256)
    # As stored; after a decode in a decoding thread (seconds, perhaps), with the count read again.
    storage.check_room_for_upload(owner, len(prepared.data), fresh=not inline)
    record = JobFile(
        owner=owner,
        kind=kind,
        original_name=_safe_name(filename),
        content_type=prepared.content_type,
        width=prepared.width,
        height=prepared.height,
        size=len(prepared.data),
        sha256=prepared.sha256,
    )
    record.file.save(f"upload{_ext(prepared.content_type)}", ContentFile(prepared.data), save=False)
    if prepared.thumb:
        record.thumbnail.save(f"thumb{_ext(prepared.thumb_type)}", ContentFile(prepared.thumb), save=False)
    queries.insert_file(record)  # with its owner's byte count (jobs.storage)
    return record


@dataclass(frozen=True)
class PreparedUpload:
    data: bytes
    width: int
    height: int
    content_type: str
    thumb: bytes
    thumb_type: str
    sha256: str  # of `data`, as stored


def _prepare_upload(data: bytes, kind: str, sent_sha256: str) -> PreparedUpload:
    """The decoding work (seconds for a large image): run in a decoding thread, no database.
    `sent_sha256`: the SHA-256 of `data`, hex."""
    # One decode each (check_header has checked the byte count already). A picture's thumbnail
    # is made when first asked for (ensure_thumbnail): an API client never asks.
    if kind == JobFile.Kind.IMAGE:
        normalized = imaging.normalize_upload(data, max_pixels=settings.UPLOAD_MAX_PIXELS, sha256=sent_sha256)
        # Kept as sent, the stored bytes are the sent ones: their digest is known already.
        stored_sha256 = sent_sha256 if normalized.png is data else hashlib.sha256(normalized.png).hexdigest()
        return PreparedUpload(normalized.png, normalized.width, normalized.height, "image/png", b"", "", stored_sha256)
    info, thumb, thumb_type = imaging.inspect_with_thumbnail(data, max_pixels=settings.UPLOAD_MAX_PIXELS)
    return PreparedUpload(data, info.width, info.height, info.content_type, thumb, thumb_type, sent_sha256)


def _checked(work, *args, **kwargs):
    """``work``'s result, its ImageRejected as the API's TooLarge (413) or InvalidInput (400)."""
    try:
        return work(*args, **kwargs)
    except imaging.ImageRejected as exc:
        error_class = TooLarge if exc.status == 413 else InvalidInput
        raise error_class(f"file: {exc.message}", errors={"file": exc.message}) from exc


def media_limits(field: dict | None = None) -> media.Limits:
    """The site's limits on uploaded video and sound, narrowed by a spec field's own."""

    def lower(site, own):
        return site if own is None else min(site, own)

    field = field or {}
    return media.Limits(
        max_bytes=lower(settings.MEDIA_UPLOAD_MAX_BYTES, field.get("max_bytes")),
        max_seconds=lower(settings.MEDIA_UPLOAD_MAX_SECONDS, field.get("max_seconds")),
        max_pixels=lower(settings.MEDIA_UPLOAD_MAX_PIXELS, field.get("max_pixels")),
        max_frames=lower(settings.MEDIA_UPLOAD_MAX_FRAMES, field.get("max_frames")),
    )


def _store_media_upload(*, owner, data: bytes, kind: str, filename: str, limits: dict) -> JobFile:
    storage.check_room_for_upload(owner, len(data))
    info = decoding.run(owner.pk, _probed, data, kind.lower(), media_limits(limits))
    if kind == JobFile.Kind.VIDEO and info.content_type in UNLOADABLE_VIDEO:
        message = UNLOADABLE_VIDEO[info.content_type]
        raise InvalidInput(f"file: {message}", errors={"file": message})
    record = JobFile(
        owner=owner, kind=kind, original_name=_safe_name(filename), sha256=hashlib.sha256(data).hexdigest()
    )
    _describe(record, info, size=len(data))
    record.file.save(f"upload{_ext(info.content_type)}", ContentFile(data), save=False)
    record.thumbnail.save("preview.webp", ContentFile(info.preview), save=False)
    queries.insert_file(record)
    return record


def _probed(data: bytes, expect: str, limits: media.Limits) -> media.MediaInfo:
    """The decoding work for video and sound (seconds for a long clip): in a decoding thread."""
    try:
        return media.probe(data, expect=expect, limits=limits)
    except media.MediaRejected as exc:
        error_class = TooLarge if exc.status == 413 else InvalidInput
        raise error_class(f"file: {exc.message}", errors={"file": exc.message}) from exc


def _describe(record: JobFile, info: media.MediaInfo, *, size: int) -> None:
    record.media = info.kind
    record.content_type = info.content_type
    record.width, record.height, record.size = info.width, info.height, size
    record.duration, record.frame_count = info.duration, info.frames if info.kind == "video" else 0
    record.frame_rate, record.sample_rate = info.frame_rate, info.sample_rate


@dataclass
class ResultFacts:
    """What a result file holds (JobFile field values) and its preview, read from its bytes."""

    fields: dict = dataclass_field(default_factory=dict)
    preview: bytes = b""
    preview_type: str = ""


def describe_result(data: bytes) -> ResultFacts:
    """Decode a result to learn what it is: a still picture gets a thumbnail, a video or an
    animation a poster frame, a sound a waveform. CPU work and no database: the runner calls it
    in a worker thread, off its event loop and its database thread."""
    info = None
    if media.sniff(data) is not None:
        try:
            info = media.probe(data)
        except media.MediaRejected:
            info = None
    if info is not None and info.kind != "image":
        record = JobFile()
        _describe(record, info, size=len(data))
        names = ("media", "content_type", "width", "height", "duration", "frame_count", "frame_rate", "sample_rate")
        return ResultFacts({name: getattr(record, name) for name in names}, info.preview, "image/webp")
    try:  # a still picture: its header says enough; its thumbnail is made when first asked for
        fmt, width, height = imaging.check_header(data, max_bytes=len(data), max_pixels=RESULT_MAX_PIXELS)
    except imaging.ImageRejected:  # nothing we can show: keep the bytes all the same
        return ResultFacts({"content_type": "application/octet-stream"})
    return ResultFacts({"content_type": CONTENT_TYPES[fmt], "width": width, "height": height})


RESULT_MAX_PIXELS = 10**9  # a node's pictures are not limited as uploads are (Pillow's bomb limit still is)


def thumbnail_on_demand(record: JobFile) -> bool:
    """A still picture (an uploaded image or a result) whose thumbnail is still to be made."""
    return (
        not record.thumbnail
        and record.kind in (JobFile.Kind.IMAGE, JobFile.Kind.RESULT)
        and record.media == JobFile.Media.IMAGE
        and record.content_type in CONTENT_TYPES.values()
    )


def has_preview(record: JobFile) -> bool:
    return bool(record.thumbnail) or thumbnail_on_demand(record)


def ensure_thumbnail(record: JobFile) -> None:
    """Make a still picture's thumbnail if it has none yet (the first time someone asks for it),
    decoded in a decoding thread. A picture that cannot be decoded keeps none (its file is
    shown instead); of two requests making it at once, the first to record it wins."""
    if not thumbnail_on_demand(record):
        return
    make = functools.partial(imaging.make_thumbnail, max_pixels=RESULT_MAX_PIXELS)
    try:
        thumb, thumb_type = decoding.run_unbounded(make, read_bytes(record))
    except (imaging.ImageRejected, OSError):
        return
    record.thumbnail.save(f"thumb{_ext(thumb_type)}", ContentFile(thumb), save=False)
    if not JobFile.objects.filter(pk=record.pk, thumbnail="").update(thumbnail=record.thumbnail.name):
        record.thumbnail.storage.delete(record.thumbnail.name)
        record.refresh_from_db(fields=["thumbnail"])


def store_result(*, job, data: bytes, source_ref: str, facts: ResultFacts | None = None) -> JobFile | None:
    """Store one output file of a job once (None if it was stored already); see store_results."""
    stored = store_results(job=job, results=[(data, source_ref, facts)])
    return stored[0] if stored else None


def store_results(*, job, results) -> list[JobFile]:
    """Store a job's output files, (bytes, source ref[, describe_result(bytes)]) each, once: a
    second collection of the same file is skipped. Returns those stored now, in order.

    "Once" is the database's unique constraint, not a query first: a second collection is rare
    (recovery after a crash), a query per result is not. One INSERT that skips conflicts itself
    (so no savepoint is needed inside the caller's transaction) and one UPDATE of the owner's
    byte count (jobs.storage), in the caller's transaction or in one of their own."""
    records = [_result_record(job, data, ref, facts[0] if facts else None) for data, ref, *facts in results]
    if not records:
        return []
    with transaction.atomic(savepoint=False):
        inserted = queries.insert_files_skipping_stored(records)
        stored = [record for record in records if record.pk in inserted]
        if stored:
            storage.count_stored_results(job.user_id, sum(record.size for record in stored))
    for record in records:
        if record.pk not in inserted:  # stored already (an earlier or a racing collection)
            delete_stored(record)
    return stored


def _result_record(job, data: bytes, source_ref: str, facts: ResultFacts | None) -> JobFile:
    """A result's row, not yet inserted, with its file (and preview) written to storage."""
    source_ref = source_ref.replace("\x00", "")[:500]  # a node's names are not trusted either
    facts = facts if facts is not None else describe_result(data)
    record = JobFile(
        owner_id=job.user_id,
        job=job,
        kind=JobFile.Kind.RESULT,
        source_ref=source_ref,
        original_name=_safe_name(source_ref.rsplit("/", 1)[-1]),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        **facts.fields,
    )
    record.file.save(f"result{_ext(record.content_type)}", ContentFile(data), save=False)
    if facts.preview:
        record.thumbnail.save(f"thumb{_ext(facts.preview_type)}", ContentFile(facts.preview), save=False)
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


def extension(content_type: str) -> str:
    """The file name extension for a content type we store (".bin" for others)."""
    return _ext(content_type)


def _ext(content_type: str) -> str:
    return {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/webp": ".webp",
        "image/gif": ".gif",
        "image/bmp": ".bmp",
        "video/mp4": ".mp4",
        "video/webm": ".webm",
        "video/quicktime": ".mov",
        "video/x-matroska": ".mkv",
        "audio/flac": ".flac",
        "audio/wav": ".wav",
        "audio/mpeg": ".mp3",
        "audio/ogg": ".ogg",
        "audio/mp4": ".m4a",
        "audio/webm": ".webm",
    }.get(content_type, ".bin")


def _safe_name(name: str) -> str:
    """Keep a display name only: no directories, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:200]
    return "" if name.strip(". ") == "" else name


def store_copy(record: JobFile, *, owner, kind: str | None = None) -> JobFile:
    """A copy of an input file for another job (retry with the same inputs); `kind` gives the
    copy another role (a result copied as a new job's picture input)."""
    copy = JobFile(
        owner=owner,
        kind=kind or record.kind,
        original_name=record.original_name,
        content_type=record.content_type,
        width=record.width,
        height=record.height,
        size=record.size,
        media=record.media,
        duration=record.duration,
        frame_count=record.frame_count,
        frame_rate=record.frame_rate,
        sample_rate=record.sample_rate,
        sha256=record.sha256,
    )
    copy.file.save(f"copy{_ext(record.content_type)}", ContentFile(read_bytes(record)), save=False)
    if record.thumbnail:
        with record.thumbnail.open("rb") as f:
            copy.thumbnail.save(record.thumbnail.name.rsplit("/", 1)[-1], ContentFile(f.read()), save=False)
    queries.insert_file(copy)
    return copy
