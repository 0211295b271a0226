"""Serving /static/ from the ASGI application (SERVE_STATIC, the default without nginx)."""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import Http404


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's static handler, with a path that leaves the static folders (`/static/%2e%2e/…`)
    answered 404: Django's finders raise SuspiciousFileOperation there, which it lets become a 500."""

    def serve(self, request):
        try:
            response = super().serve(request)
        except SuspiciousOperation as exc:
            raise Http404("No such static file.") from exc
        # These answers skip the middleware, SecurityMiddleware's nosniff included (nginx adds it
        # behind the shipped site, see deploy/nginx/comfyportal.conf).
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
