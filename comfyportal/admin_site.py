"""The Django admin under our name, with the plumbing (the task queue's tables, the token
blacklist) in one "System" section at the end that only superusers see."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

# Apps whose tables are machinery rather than the portal's own content.
SYSTEM_APPS = ("django_q", "token_blacklist")


class PortalAdminSite(admin.AdminSite):
    site_header = "comfyportal"
    site_title = "comfyportal"
    index_title = _("Administration")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        ours = [app for app in apps if app["app_label"] not in SYSTEM_APPS]
        system = [app for app in apps if app["app_label"] in SYSTEM_APPS]
        if not system or not request.user.is_superuser:
            return ours
        models = [{**model, "name": f"{model['name']} ({app['name']})"} for app in system for model in app["models"]]
        return [
            *ours,
            {
                "name": _("System"),
                "app_label": "system",
                "app_url": reverse("admin:index", current_app=self.name) + "#system",
                "has_module_perms": True,
                "models": models,
            },
        ]
