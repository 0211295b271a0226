"""Cut a blocked user off at the next page request: log them out and say why."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils.translation import gettext as _


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
