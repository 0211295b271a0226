from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = _("Jobs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save
        from django_q.signals import post_spawn

        from accounts.signals import profile_usage, user_blocked
        from jobs import pictures, receivers, storage
        from jobs.models import JobFile
        from jobs.supervision import on_worker_spawned
        from nodes.signals import node_came_online
        from workflows.signals import card_pictures_wanted

        post_spawn.connect(on_worker_spawned, dispatch_uid="jobs-ensure-runners")
        node_came_online.connect(receivers.wake_on_node_online, dispatch_uid="jobs-wake-on-node")
        user_blocked.connect(receivers.close_blocked_users_sockets, dispatch_uid="jobs-disconnect-blocked")
        card_pictures_wanted.connect(pictures.shared_card_pictures, dispatch_uid="jobs-shared-card-pictures")
        profile_usage.connect(receivers.report_job_usage, dispatch_uid="jobs-profile-usage")
        post_save.connect(storage.count_saved_file, sender=JobFile, dispatch_uid="jobs-storage-saved")
        post_delete.connect(storage.count_deleted_file, sender=JobFile, dispatch_uid="jobs-storage-deleted")
