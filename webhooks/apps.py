from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from jobs.signals import job_status_changed
        from webhooks import receivers

        job_status_changed.connect(receivers.job_status_changed, dispatch_uid="webhooks-job-events")
