from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = _("Workflows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from workflows.models import Workflow, workflows_changed_in_bulk
        from workflows.services import workflows_changed

        post_save.connect(workflows_changed, sender=Workflow, dispatch_uid="workflows-changed-save")
        post_delete.connect(workflows_changed, sender=Workflow, dispatch_uid="workflows-changed-delete")
        workflows_changed_in_bulk.connect(workflows_changed, sender=Workflow, dispatch_uid="workflows-changed-bulk")
