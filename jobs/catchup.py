"""What a /ws/jobs/ client is sent when it connects: a snapshot, or what it missed.

Without a cursor the client gets its active jobs (a snapshot). With the cursor of the last
event it saw (`since`), it gets every job of its own that changed after that event, in the
order of the changes, finished ones included, each once in its present state. A cursor that
cannot be honoured (malformed, ahead of the user's sequence — from another user or another
database —, or so old that too much changed since) is answered with the snapshot and
`reset`: the client should drop what it shows and take the snapshot as the truth.

Every case costs a fixed handful of indexed queries (the user's counter, the jobs, their
files, the queue positions), however many jobs there are. See docs/live-events.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from jobs import cursors
from jobs.models import Job
from jobs.presenters import for_presenting, present_jobs

SNAPSHOT_JOBS = 200  # active jobs in a snapshot (the most recently changed)


@dataclass
class CatchUp:
    jobs: list[dict]  # in the order of their last change
    cursor: int  # resume from here next time (every change up to it is in `jobs` or was seen before)
    resumed: bool  # `jobs` are the changes since the client's cursor (not a snapshot)
    reset: bool  # the client's cursor was not honoured: `jobs` are a snapshot
    detail: str = ""  # why, when the cursor was malformed

    def synced_message(self) -> dict:
        message = {"type": "synced", "cursor": self.cursor, "resumed": self.resumed, "reset": self.reset}
        if self.detail:
            message["detail"] = self.detail
        return message


class BadCursor(ValueError):
    pass


def parse_since(raw) -> int | None:
    """A `since` from a query string or a message: None when absent; BadCursor when malformed."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise BadCursor("since: must be a whole number ≥ 0 (the cursor of an event you received)")
    try:
        value = int(raw)
    except ValueError:
        raise BadCursor("since: must be a whole number ≥ 0 (the cursor of an event you received)") from None
    if value < 0:
        raise BadCursor("since: must be a whole number ≥ 0 (the cursor of an event you received)")
    return value


def catch_up(user_id: int, since: int | None, *, malformed: str = "") -> CatchUp:
    """Blocking (database): what a client connecting with cursor `since` is sent."""
    return catch_up_many(user_id, [(since, malformed)])[0]


def catch_up_many(user_id: int, requests: list[tuple[int | None, str]]) -> list[CatchUp]:
    """Blocking (database): what each of several sockets of one user is sent, given each one's
    (since, malformed): one read for all of them, as for one (see jobs.catchup_batch).

    Every socket gets exactly what `catch_up` would give it alone: the changed jobs are read
    once from the oldest cursor, and each socket takes those changed after its own."""
    # Read before the jobs: every change numbered up to `cursor` has committed (a user's changes
    # commit in number order), so the jobs read next hold all of them; later ones are in those
    # jobs or arrive as live events (every socket joined its group before this was called).
    cursor = cursors.current(user_id)
    limit = settings.WS_RESUME_MAX_JOBS
    behind = [since for since, _ in requests if since is not None and since < cursor]
    changed: list[Job] = []
    complete_above = 0  # every job changed after this number is in `changed`
    if behind:
        # The most recently changed first: a cursor older than the last of them missed too much.
        newest = for_presenting(Job.objects.filter(user_id=user_id, seq__gt=min(behind))).order_by("-seq")
        changed = list(newest[: limit + 1])[::-1]
        complete_above = changed[0].seq if len(changed) > limit else min(behind)

    def resumable(since) -> bool:
        return since is not None and since <= cursor and since >= complete_above

    needs_snapshot = any(not resumable(since) for since, _ in requests)
    active: list[Job] = []
    if needs_snapshot:
        query = for_presenting(Job.objects.filter(user_id=user_id, status__in=Job.ACTIVE)).order_by("-seq")
        active = list(query[:SNAPSHOT_JOBS])[::-1]
    # Each job presented once (one queue-position read for all), shared by every socket.
    jobs = {job.pk: job for job in (*changed, *active)}
    presented = dict(zip(jobs, present_jobs(jobs.values())))
    snapshot = [presented[job.pk] for job in active]

    results = []
    for since, malformed in requests:
        if since == cursor:  # nothing changed (a tab back from a short drop)
            results.append(CatchUp([], cursor, resumed=True, reset=False))
        elif resumable(since):
            missed = [presented[job.pk] for job in changed if job.seq > since]
            results.append(CatchUp(missed, cursor, resumed=True, reset=False))
        else:
            reset = since is not None or bool(malformed)
            results.append(CatchUp(snapshot, cursor, resumed=False, reset=reset, detail=malformed))
    return results
