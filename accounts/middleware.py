"""Page middleware: cut a blocked user off at the next page request (log them out and say why);
count a signed-in user's page POSTs against their rate limit."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from accounts import throttle


class BlockedUserMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_blocked and not request.path.startswith("/api/"):
            reason = user.blocked_reason
            logout(request)
            messages.error(
                request, _("Your account is blocked: %(reason)s") % {"reason": reason or _("no reason given")}
            )
            return redirect("login")
        return self.get_response(request)


class PagePostRateLimitMiddleware:
    """A signed-in user's page POSTs (forms, uploads, htmx actions) count against the same
    per-user bucket as their API calls; beyond it, 429 with Retry-After. The API counts its
    own calls in its authentication, so /api/ is left to it."""

    SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            request.method not in self.SAFE_METHODS
            and user is not None
            and user.is_authenticated
            and not request.path.startswith("/api/")
        ):
            wait = throttle.api_wait_seconds(user.pk)
            if wait:
                return _too_many_requests(request, wait)
        return self.get_response(request)


def _too_many_requests(request, wait: int) -> HttpResponse:
    """A 429 saying when to try again. htmx swaps only 2xx answers, so for htmx the reason is
    kept as a message and the page reloads to show it."""
    text = _("Too many requests: at most %(limit)s a minute. Try again in %(wait)s seconds.") % {
        "limit": settings.API_RATE_LIMIT,
        "wait": wait,
    }
    if request.headers.get("HX-Request") == "true":  # django-htmx runs after this middleware
        messages.error(request, text)
        response = HttpResponse(status=429)
        response["HX-Refresh"] = "true"
    else:
        response = HttpResponse(text, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response
