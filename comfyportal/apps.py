from django.apps import AppConfig


class ComfyportalConfig(AppConfig):
    name = "comfyportal"
    verbose_name = "comfyportal"

    def ready(self):
        from comfyportal import checks  # noqa: F401  (registers the system checks)
