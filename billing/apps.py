from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from billing import receivers
        from jobs.signals import job_created, job_status_changed

        job_created.connect(receivers.hold_for_new_job, dispatch_uid="billing-hold")
        job_status_changed.connect(receivers.settle_finished_jobs, dispatch_uid="billing-settle")
