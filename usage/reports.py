"""Usage reports: what jobs consumed, grouped by day, workflow or user over a date range.

A job counts on the day it ended (in the site's time zone), with the figures written when it
ended (jobs.steps.usage_of): GPU seconds are the node's execution time of the attempt that
ended the job, so a job that failed over to another node is counted once. Billed GPU seconds
are those of jobs that succeeded; failed and cancelled jobs' GPU seconds are reported apart,
and so are the attempts nodes failed (each requeue), from `FailedAttempt`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.errors import Forbidden, InvalidInput
from jobs.models import FailedAttempt, Job

GROUPS = ("day", "workflow", "user")
MAX_DAYS = 366
DEFAULT_DAYS = 30
S = Job.Status
COLUMNS = [
    "key",
    "jobs",
    "succeeded",
    "failed",
    "cancelled",
    "gpu_seconds",
    "unbilled_gpu_seconds",
    "failed_attempts",
    "avg_queue_seconds",
    "outputs",
    "output_bytes",
]


@dataclass(frozen=True)
class Query:
    start: date
    end: date  # inclusive
    group_by: str
    user_ids: list[int] | None  # None: every user


def parse_query(viewer, *, start: str = "", end: str = "", group_by: str = "day", user: str = "") -> Query:
    """Check the parameters; 400 naming the field, 403 for someone else's usage unless admin.

    `user`: "" the viewer, a username, or "all" (admins only but for their own name)."""
    errors = {}
    today = timezone.localdate()
    end_day = _day(end, "to", errors) if end else today
    start_day = _day(start, "from", errors) if start else (end_day or today) - timedelta(days=DEFAULT_DAYS - 1)
    if group_by not in GROUPS:
        errors["group_by"] = f"must be one of {', '.join(GROUPS)}"
    if start_day and end_day and not errors:
        if start_day > end_day:
            errors["from"] = "must not be after 'to'"
        elif (end_day - start_day).days >= MAX_DAYS:
            errors["from"] = f"the range may span at most {MAX_DAYS} days"
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v}" for k, v in errors.items()) + ".", errors=errors)
    if not user or user == viewer.get_username():
        user_ids = [viewer.pk]
    elif not viewer.is_admin:
        raise Forbidden("user: only admins may see other users' usage.")
    elif user == "all":
        user_ids = None
    else:
        found = get_user_model().objects.filter(username=user).values_list("pk", flat=True).first()
        if found is None:
            raise InvalidInput(f"user: no user named {user}.", errors={"user": "unknown"})
        user_ids = [found]
    return Query(start=start_day, end=end_day, group_by=group_by, user_ids=user_ids)


def _day(value: str, field: str, errors: dict) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = "must be a date, YYYY-MM-DD"
        return None


def _bounds(query: Query) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(query.start, time.min), tz)
    end = timezone.make_aware(datetime.combine(query.end + timedelta(days=1), time.min), tz)
    return start, end


def report(query: Query) -> dict:
    """{from, to, group_by, rows: [{key, …COLUMNS}], totals: {…}} — rows sorted by key."""
    start, end = _bounds(query)
    jobs = Job.objects.filter(finished_at__gte=start, finished_at__lt=end)
    attempts = FailedAttempt.objects.filter(ended_at__gte=start, ended_at__lt=end)
    if query.user_ids is not None:
        jobs = jobs.filter(user_id__in=query.user_ids)
        attempts = attempts.filter(job__user_id__in=query.user_ids)
    tz = timezone.get_current_timezone()
    key = {
        "day": (TruncDate("finished_at", tzinfo=tz), TruncDate("ended_at", tzinfo=tz)),
        "workflow": (F("workflow__slug"), F("job__workflow__slug")),
        "user": (F("user__username"), F("job__user__username")),
    }[query.group_by]
    done = Q(status=S.DONE)
    rows: dict = {}
    aggregated = (
        jobs.annotate(key=key[0])
        .values("key")
        .annotate(
            jobs=Count("id"),
            succeeded=Count("id", filter=done),
            failed=Count("id", filter=Q(status=S.ERROR)),
            cancelled=Count("id", filter=Q(status=S.CANCELLED)),
            billed=Sum("gpu_seconds", filter=done),
            unbilled=Sum("gpu_seconds", filter=~done),
            avg_queue=Avg("queue_seconds"),
            outputs=Sum("output_count"),
            output_size=Sum("output_bytes"),
        )
    )
    for row in aggregated:
        rows[str(row["key"])] = {**_empty(str(row["key"])), **_clean(row)}
    for row in attempts.annotate(key=key[1]).values("key").annotate(n=Count("id")):
        rows.setdefault(str(row["key"]), _empty(str(row["key"])))["failed_attempts"] = row["n"]
    ordered = [rows[k] for k in sorted(rows)]
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "group_by": query.group_by,
        "rows": ordered,
        "totals": _totals(ordered),
    }


def _empty(key: str) -> dict:
    return dict.fromkeys(COLUMNS, 0) | {
        "key": key,
        "gpu_seconds": 0.0,
        "unbilled_gpu_seconds": 0.0,
        "avg_queue_seconds": None,
    }


def _clean(row: dict) -> dict:
    return {
        "key": str(row["key"]),
        "jobs": row["jobs"],
        "succeeded": row["succeeded"],
        "failed": row["failed"],
        "cancelled": row["cancelled"],
        "gpu_seconds": round(row["billed"] or 0.0, 3),
        "unbilled_gpu_seconds": round(row["unbilled"] or 0.0, 3),
        "avg_queue_seconds": round(row["avg_queue"], 3) if row["avg_queue"] is not None else None,
        "outputs": row["outputs"] or 0,
        "output_bytes": row["output_size"] or 0,
    }


def _totals(rows: list[dict]) -> dict:
    totals = {name: sum(row[name] for row in rows) for name in COLUMNS if name not in ("key", "avg_queue_seconds")}
    for name in ("gpu_seconds", "unbilled_gpu_seconds"):
        totals[name] = round(totals[name], 3)
    return totals


def as_csv(data: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([data["group_by"], *COLUMNS[1:]])
    for row in data["rows"]:
        writer.writerow([row["key"], *(("" if row[c] is None else row[c]) for c in COLUMNS[1:])])
    writer.writerow(["total", *(data["totals"].get(c, "") for c in COLUMNS[1:])])
    return buffer.getvalue()
