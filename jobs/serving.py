"""Sending a stored file's bytes once its owner has been checked: whole, or the byte range a
player asks for (RFC 9110 §14), or handed to nginx with X-Accel-Redirect.

Browsers seek in a video with ``Range: bytes=N-`` and Safari plays nothing from a server that
does not answer ranges with 206, so every file view goes through ``file_response``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse

CHUNK = 64 * 1024
# A file up to this size is read and sent in one body: under ASGI a FileResponse costs a hop to a
# thread to read it and a message per 4 KB block, more than reading a result picture whole.
WHOLE_BODY_BYTES = 512 * 1024
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range ``header`` asks for, as (first, last) inclusive; None for the whole file.

    None also when the header is not about bytes or asks for several ranges (a server may
    answer those with the whole file). Raises RangeNotSatisfiable for a bytes range that is
    malformed or lies beyond the end."""
    header = header.strip()
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None:
        raise RangeNotSatisfiable
    first, last = match.groups()
    if first == "":
        if last == "" or int(last) == 0:
            raise RangeNotSatisfiable
        length = min(int(last), size)  # the last N bytes
        if size == 0:
            raise RangeNotSatisfiable
        return size - length, size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


def file_response(request, field, *, content_type: str, etag: str = "", headers: dict | None = None) -> HttpResponse:
    """The bytes of ``field`` (a FieldFile) for ``request``: 200, 206 with Content-Range, or 416.

    With FILES_X_ACCEL_REDIRECT set, nginx sends the body (and answers ranges itself)."""
    extra = dict(headers or {})
    if etag:
        extra["ETag"] = f'"{etag}"'
    if settings.FILES_X_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.FILES_X_ACCEL_REDIRECT.rstrip("/") + "/" + field.name
        return _with(response, extra)
    size = field.size
    extra["Accept-Ranges"] = "bytes"
    wanted = None
    if_range = request.headers.get("If-Range", "")
    if not if_range or (etag and if_range.strip() == f'"{etag}"'):  # a changed file: send it whole
        try:
            wanted = parse_range(request.headers.get("Range", ""), size)
        except RangeNotSatisfiable:
            detail = f"Range: not a byte range within the file's {size} bytes (ask bytes=first-last, first- or -count)."
            response = JsonResponse({"detail": detail}, status=416)  # /api/ answers errors in JSON
            response["Content-Range"] = f"bytes */{size}"
            return _with(response, extra)
    if wanted is None and size <= WHOLE_BODY_BYTES:
        with field.storage.open(field.name, "rb") as handle:
            response = HttpResponse(handle.read(), content_type=content_type)
        response["Content-Length"] = str(len(response.content))
        return _with(response, extra)
    if wanted is None:
        response = FileResponse(field.open("rb"), content_type=content_type)
        return _with(response, extra)
    first, last = wanted
    handle = field.open("rb")
    handle.seek(first)
    response = StreamingHttpResponse(_read(handle, last - first + 1), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    return _with(response, extra)


def content_disposition(name: str, *, download: bool = False) -> str:
    """``attachment`` (save it) or ``inline`` (show it), with the file name in ASCII for every
    browser and in UTF-8 (RFC 6266 ``filename*``) when it has other characters."""
    plain = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in name)
    value = f'{"attachment" if download else "inline"}; filename="{plain}"'
    if plain != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _read(handle, remaining: int):
    try:
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _with(response: HttpResponse, headers: dict) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response
