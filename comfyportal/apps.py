from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ComfyportalConfig(AppConfig):
    name = "comfyportal"
    verbose_name = "comfyportal"

    def ready(self):
        from comfyportal import checks  # noqa: F401  (registers the system checks)


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with comfyportal.admin_site.PortalAdminSite as admin.site."""

    default = False  # "comfyportal" in INSTALLED_APPS stays ComfyportalConfig
    default_site = "comfyportal.admin_site.PortalAdminSite"
