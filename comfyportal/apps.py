from django.apps import AppConfig


class ComfyportalConfig(AppConfig):
    name = "comfyportal"
    verbose_name = "comfyportal"
