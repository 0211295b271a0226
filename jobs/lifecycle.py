"""The job lifecycle in one place: every status change goes through `transition()` (or, for
dispatch handing many queued jobs to nodes at once, `claim()`).

A transition is a conditional UPDATE (`WHERE id = … AND status = from`), so of two
processes racing to move a job only one wins, and an illegal move is an error, never a
silent overwrite.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from jobs.models import Job

S = Job.Status
ALLOWED: dict[str, set[str]] = {
    S.QUEUED: {S.RUNNING, S.CANCELLED, S.ERROR},
    S.RUNNING: {S.DONE, S.ERROR, S.CANCELLED, S.QUEUED},
    S.DONE: set(),
    S.ERROR: set(),
    S.CANCELLED: set(),
}


class IllegalTransition(Exception):
    pass


def transition(job_id, *, from_status: str, to_status: str, extra_filter: dict | None = None, **fields) -> bool:
    """Move a job from one status to another; False if it was no longer in `from_status`.

    Raises IllegalTransition for a move the lifecycle does not allow.
    """
    if to_status not in ALLOWED[from_status]:
        raise IllegalTransition(f"a job cannot go from {from_status} to {to_status}")
    if to_status in Job.FINISHED:
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("runner_id", "")
        if to_status == S.DONE:
            fields.setdefault("progress", 1.0)
    if to_status == S.QUEUED:
        fields.update(node=None, prompt_id="", client_id="", runner_id="", heartbeat_at=None,
                      started_at=None, submitted_at=None, node_finished_at=None, progress=0.0, progress_text="")
    updated = Job.objects.filter(pk=job_id, status=from_status, **(extra_filter or {})).update(
        status=to_status, **fields
    )
    return updated == 1




def claim(assignments: dict, *, runner_id: str, now) -> None:
    """QUEUED → RUNNING for many jobs in one UPDATE: {job id: (node id, prompt id, client id)}.

    A job no longer QUEUED (cancelled, or claimed by another dispatcher) is left alone: read
    back which were claimed by their prompt ids. Plain SQL: the ORM spends longer compiling
    one CASE per field and job than the database spends running the statement."""
    if not assignments:
        return
    if S.RUNNING not in ALLOWED[S.QUEUED]:
        raise IllegalTransition(f"a job cannot go from {S.QUEUED} to {S.RUNNING}")
    ids = [Job._meta.pk.get_db_prep_value(pk, connection) for pk in assignments]
    at = Job._meta.get_field("started_at").get_db_prep_value(now, connection)
    cases, params = [], []
    for column, position in (("node_id", 0), ("prompt_id", 1), ("client_id", 2)):
        cases.append(f"{column} = CASE id " + " ".join(["WHEN %s THEN %s"] * len(ids)) + " END")
        for db_id, values in zip(ids, assignments.values()):
            params += [db_id, values[position]]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Job._meta.db_table} SET status = %s, {', '.join(cases)}, started_at = %s, heartbeat_at = %s, "
            f"runner_id = %s, progress = 0, progress_text = '', error = '' "
            f"WHERE status = %s AND id IN ({', '.join(['%s'] * len(ids))})",
            [S.RUNNING, *params, at, at, runner_id, S.QUEUED, *ids],
        )
