from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = _("GPU servers")
    default_auto_field = "django.db.models.BigAutoField"
