"""Sign in and out of the pages (Django's auth views with the portal's templates)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from accounts import keys
from accounts.models import ApiKey
from accounts.services import profile
from core.errors import DomainError


class PortalAuthenticationForm(AuthenticationForm):
    """Django's login form that refuses a blocked user and says why."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if getattr(user, "is_blocked", False):
            raise ValidationError(
                _("Your account is blocked: %(reason)s"),
                code="blocked",
                params={"reason": user.blocked_reason or _("no reason given")},
            )


login_view = auth_views.LoginView.as_view(
    template_name="accounts/login.html",
    authentication_form=PortalAuthenticationForm,
    redirect_authenticated_user=True,
)

# POST only (Django 5): the menu's logout button is a small form.
logout_view = auth_views.LogoutView.as_view()


def user_menu(request) -> dict:
    """Context for the user menu (limits and today's usage), computed only if a page shows it.

    Works as a context processor too (``accounts.views.user_menu``); until it is registered in
    settings, the page views merge it into their context.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"user_profile": SimpleLazyObject(lambda: profile(user))}


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """The user's API keys: create one (shown once, on the page that answers the POST), revoke."""
    created_key, errors, form = None, {}, {"name": "", "scopes": ["jobs:read", "jobs:write", "files"], "expires": ""}
    if request.method == "POST":
        if request.POST.get("revoke"):
            try:
                keys.revoke_key(user=request.user, key_id=int(request.POST["revoke"]))
                messages.success(request, _("The key was revoked; it no longer works."))
            except (ValueError, DomainError):
                messages.error(request, _("API key not found."))
            return redirect("api_keys")
        form = {
            "name": request.POST.get("name", ""),
            "scopes": request.POST.getlist("scopes"),
            "expires": request.POST.get("expires_in_days", ""),
        }
        try:
            days = int(form["expires"]) if form["expires"] else None
            key, created_key = keys.create_key(
                user=request.user, name=form["name"], scopes=form["scopes"], expires_in_days=days
            )
            form = {"name": "", "scopes": form["scopes"], "expires": ""}
        except ValueError:
            errors = {"expires_in_days": _("Enter a whole number of days.")}
        except DomainError as exc:
            errors = exc.errors or {"form": exc.detail}
    scopes = [(value, label) for value, label in ApiKey.Scope.choices if value != "admin" or request.user.is_admin]
    rows = [{"key": key, "state": keys.state_of(key)} for key in keys.keys_of(request.user)]
    context = {
        **user_menu(request),
        "rows": rows,
        "created_key": created_key,
        "errors": errors,
        "form_error": errors.get("form", ""),
        "form": form,
        "scope_choices": scopes,
        "expiry_choices": [
            ("", _("Never")),
            ("7", _("7 days")),
            ("30", _("30 days")),
            ("90", _("90 days")),
            ("365", _("1 year")),
        ],
    }
    return render(request, "accounts/keys.html", context, status=400 if errors else 200)
