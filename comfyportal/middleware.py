"""Request logging; JSON bodies for every error under /api/ (unknown routes, 405, 500, unreadable
bodies); NUL characters refused in query, form and JSON values on every path; the
Content-Security-Policy header."""

from __future__ import annotations

import logging
import time

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

from core.nul import json_holds_nul

logger = logging.getLogger("comfyportal.request")

UNREADABLE_BODY_ERRORS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, MultiPartParserError)


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
        is_api = request.path.startswith("/api/")
        try:
            nul_field = _field_with_nul(request)
        except UNREADABLE_BODY_ERRORS as exc:
            if not is_api:
                raise  # Django's own 400 page
            return _unreadable_body_response(exc)
        if nul_field:
            # PostgreSQL can neither store NUL in text or JSON nor compare with it: refuse it on
            # every path, pages included, instead of failing in a query.
            detail = f"{nul_field}: NUL characters (\\u0000) are not allowed."
            if is_api:
                return JsonResponse({"detail": detail}, status=400)
            return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")
        response = self.get_response(request)
        if not is_api or response.status_code < 400:
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
        detail = f"body: not a readable multipart form ({exception})."
        if "header size" in str(exception):  # Django caps a part's headers at 1 KB: a long file name
            detail += " Keep file names under 1,000 characters."
        return JsonResponse({"detail": detail}, status=400)
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return JsonResponse({"detail": f"body: {exception}"}, status=400)
    return None


def _field_with_nul(request) -> str | None:
    """The name of the first query or form value (or "body" for a JSON body) holding NUL."""
    fields = list(request.GET.lists())
    if request.method == "POST" and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        fields += request.POST.lists()  # the form's text values; uploaded files may hold any byte
    for name, values in fields:
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "") or "a field name"
    if request.method in ("POST", "PUT", "PATCH") and request.content_type.endswith("json"):
        if json_holds_nul(request.body):
            return "body"
    return None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with this host's WebSocket address in connect-src: CSP Level 3
    lets 'self' match ws:/wss: of the same host, older browsers (Safari before 15.4) need it named."""

    def get_policy_parts(self, request, response, report_only: bool = False):
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        socket_origin = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        parts.update = {**(parts.update or {}), "connect-src": [socket_origin]}
        return parts
