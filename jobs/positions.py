"""Where queued jobs stand under fair scheduling (1 = next): an estimate for people.

Dispatch serves users round-robin, so ahead of a job are its owner's earlier queued jobs
and, from every other user, as many jobs as that plus one (or all they have queued).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q, Window
from django.db.models.functions import Rank, RowNumber

from jobs import queries
from jobs.models import Job

S = Job.Status


def _estimate(owner_id: int, own_ahead: int, queued: Iterable[tuple[int, int]]) -> int:
    """`queued`: (user id, their queued jobs) for every user with queued jobs."""
    return 1 + own_ahead + sum(min(count, own_ahead + 1) for user_id, count in queued if user_id != owner_id)


def new_job_position(owner_id: int, own_queued: int, queued: Iterable[tuple[int, int]]) -> int:
    """The position of a job submitted now, from the counts before it: (user id, their queued
    jobs) for every user, and how many its owner has queued (all of them are ahead of it)."""
    return _estimate(owner_id, own_queued, queued)


def queue_position(job: Job) -> int | None:
    """One job's position (one query), None when it is not queued."""
    if job.status != S.QUEUED:
        return None
    rows = queries.queued_per_user(job.user_id, job.created_at)
    own_ahead = sum(ahead for _, _, ahead in rows)
    return _estimate(job.user_id, own_ahead, ((user_id, count) for user_id, count, _ in rows))


def queue_positions(jobs: Iterable[Job]) -> dict:
    """{job id: position} for the queued ones of a list of jobs (a page, a WebSocket's
    snapshot), from one query whatever the list's or the queue's length (none if no job is
    queued). Jobs not in the map are not queued."""
    wanted = [job.pk for job in jobs if job.status == S.QUEUED]
    if not wanted:
        return {}
    per_user = {"partition_by": F("user_id")}
    oldest_first = F("created_at").asc()
    # Every queued job, with its owner's queue: keep each user's first (for their count) and ours.
    rows = list(
        Job.objects.filter(status=S.QUEUED)
        .annotate(
            queued=Window(Count("pk"), **per_user),
            ahead=Window(Rank(), order_by=oldest_first, **per_user) - 1,
            nth=Window(RowNumber(), order_by=oldest_first, **per_user),
        )
        .filter(Q(nth=1) | Q(pk__in=wanted))
        .order_by()
        .values_list("pk", "user_id", "queued", "ahead")
    )
    queued = {user_id: count for _, user_id, count, _ in rows}
    listed = set(wanted)
    return {pk: _estimate(user_id, ahead, queued.items()) for pk, user_id, _, ahead in rows if pk in listed}
