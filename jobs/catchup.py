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
    # Read before the jobs: every change numbered up to `cursor` has committed (a user's changes
    # commit in number order), so the jobs read next hold all of them; later ones are in those
    # jobs or arrive as live events (the consumer joined its group before calling this).
    cursor = cursors.current(user_id)
    if since == cursor:  # nothing changed (a tab back from a short drop): one query
        return CatchUp([], cursor, resumed=True, reset=False)
    if since is not None and since < cursor:
        changed = list(
            for_presenting(Job.objects.filter(user_id=user_id, seq__gt=since)).order_by("seq")[
                : settings.WS_RESUME_MAX_JOBS + 1
            ]
        )
        if len(changed) <= settings.WS_RESUME_MAX_JOBS:
            return CatchUp(present_jobs(changed), cursor, resumed=True, reset=False)
    active = for_presenting(Job.objects.filter(user_id=user_id, status__in=Job.ACTIVE)).order_by("-seq")
    jobs = present_jobs(list(active[:SNAPSHOT_JOBS])[::-1])
    return CatchUp(jobs, cursor, resumed=False, reset=since is not None or bool(malformed), detail=malformed)
