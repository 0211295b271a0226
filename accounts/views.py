"""Sign in and out of the pages (Django's auth views with the portal's templates)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from accounts.services import profile


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
