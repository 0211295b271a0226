"""How jobs reacts to other parts' signals; JobsConfig.ready() connects these receivers."""

from __future__ import annotations

from jobs.models import Job, quota_day_start
from jobs.notify import disconnect_user, wake_dispatch

S = Job.Status


def close_blocked_users_sockets(sender, user, **kwargs) -> None:
    """accounts' `user_blocked`: close the user's open WebSockets. Their queued jobs stay
    queued; dispatch skips a blocked user's jobs until they are unblocked."""
    disconnect_user(user.pk)


def report_job_usage(sender, user, **kwargs) -> dict[str, int]:
    """accounts' `profile_usage`: the user's job counts for /api/me and the user menu."""
    active = Job.objects.filter(user=user, status__in=Job.ACTIVE)
    return {
        "jobs_today": Job.objects.filter(user=user, created_at__gte=quota_day_start()).count(),
        "jobs_queued": active.filter(status=S.QUEUED).count(),
        "jobs_running": active.filter(status=S.RUNNING).count(),
    }


def wake_on_node_online(sender, node_id, **kwargs) -> None:
    """nodes' `node_came_online`: hand the node work at once."""
    wake_dispatch()
