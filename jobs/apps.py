from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django_q.signals import post_spawn

        from jobs.supervision import on_worker_spawned
        from nodes.signals import node_came_online

        post_spawn.connect(on_worker_spawned, dispatch_uid="jobs-ensure-runners")
        node_came_online.connect(_wake_on_node_online, dispatch_uid="jobs-wake-on-node")


def _wake_on_node_online(sender, node_id, **kwargs):
    from jobs.notify import wake_dispatch

    wake_dispatch()
