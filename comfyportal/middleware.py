"""Request logging, and JSON bodies for every error under /api/ (unknown routes, 405, 500)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError

logger = logging.getLogger("comfyportal.request")


class RequestLogMiddleware:
    """One log line per request: method, path, status, duration, user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        user = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else "-"
        logger.info(
            "%s %s %s %.1fms user=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            username,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 1),
                "user": username,
            },
        )
        return response


class ApiJsonErrorsMiddleware:
    """Under /api/, turn Django's HTML/empty error pages into `{"detail": …}`."""

    REASONS = {404: "Not found.", 405: "Method not allowed.", 500: "Internal server error."}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and _has_nul(request):
            # PostgreSQL cannot store NUL in text or JSON; say so instead of failing later.
            return JsonResponse({"detail": "body: NUL characters (\\u0000) are not allowed."}, status=400)
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        detail = self.REASONS.get(response.status_code, response.reason_phrase)
        if response.status_code == 405 and response.get("Allow"):
            detail = f"Method {request.method} not allowed; use {response['Allow']}."
        json_response = JsonResponse({"detail": detail}, status=response.status_code)
        for header in ("Allow", "Retry-After"):
            if response.get(header):
                json_response[header] = response[header]
        return json_response

    def process_exception(self, request, exception):
        if request.path.startswith("/api/"):
            unreadable = _unreadable_body_response(exception)
            if unreadable is not None:
                return unreadable
            logger.exception("unhandled error on %s %s", request.method, request.path)
            return JsonResponse({"detail": "Internal server error."}, status=500)
        return None


def _unreadable_body_response(exception: Exception) -> JsonResponse | None:
    """The 4xx for a body Django refuses to parse (too large, a broken multipart form), or None."""
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return JsonResponse({"detail": f"body: larger than the {limit} bytes allowed."}, status=413)
    if isinstance(exception, MultiPartParserError):
        # Django caps a part's headers at 1 KB, so a very long file name lands here.
        detail = f"body: not a readable multipart form ({exception}); keep file names short."
        return JsonResponse({"detail": detail}, status=400)
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return JsonResponse({"detail": f"body: {exception}"}, status=400)
    return None


def _has_nul(request) -> bool:
    if any("\x00" in value for _, values in request.GET.lists() for value in values):
        return True
    if request.method not in ("POST", "PUT", "PATCH") or not request.content_type.endswith("json"):
        return False  # multipart uploads are binary: NUL bytes are fine there
    body = request.body
    return b"\x00" in body or b"\\u0000" in body
