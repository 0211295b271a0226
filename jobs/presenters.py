"""How a job looks to its owner, in the API, over /ws/jobs/ and in the pages (one shape)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from jobs.files import has_preview
from jobs.models import Job, JobFile
from jobs.positions import queue_position, queue_positions
from jobs.routing import reason_text, waiting_states


def for_presenting(jobs):
    """Jobs with what present_job reads, without decoding each workflow's graph and spec."""
    return jobs.select_related("workflow", "node").defer("workflow__graph", "workflow__spec").prefetch_related("files")


def file_url(record: JobFile, *, thumb: bool = False) -> str:
    return f"/api/files/{record.id}" + ("?variant=thumb" if thumb else "")


def present_file(record: JobFile) -> dict:
    """One file: what it is (``kind`` image, video or audio, read from its bytes), where to get
    it, and its preview (an image's thumbnail, a video's poster frame, a sound's waveform)."""
    preview = file_url(record, thumb=True) if has_preview(record) else ""
    timed = record.media in (JobFile.Media.VIDEO, JobFile.Media.AUDIO)
    return {
        "id": str(record.id),
        "kind": record.media,
        "url": file_url(record),
        "download_url": file_url(record) + "?download=true",
        "thumbnail_url": preview or (file_url(record) if record.media == JobFile.Media.IMAGE else ""),
        "preview_url": preview,
        "width": record.width,
        "height": record.height,
        "content_type": record.content_type,
        "size": record.size,
        "duration": record.duration if timed else None,
        "frame_count": record.frame_count if record.media == JobFile.Media.VIDEO else None,
        "frame_rate": record.frame_rate if record.media == JobFile.Media.VIDEO else None,
        "sample_rate": record.sample_rate if timed and record.sample_rate else None,
    }


def present_job(
    job: Job,
    *,
    with_outputs: bool = True,
    position: bool = True,
    results: list[JobFile] | None = None,
    farm: list | None = None,
    busy: dict[int, int] | None = None,
    known_position: int | None = None,
) -> dict:
    """One job; its queue position, if queued, costs a query (a list goes through present_jobs).
    `results`: the job's result files when the caller already has them (a new job has none);
    `farm`: the node views the caller has just read (nodes.farm.node_views), and `busy` our
    jobs on them (jobs.queries.busy_slots) if it has read those too; `known_position`: its
    position when the caller has it (a job just submitted: jobs.services.check_quotas)."""
    if not position:
        place = None
    elif known_position is not None:
        place = known_position
    else:
        place = queue_position(job)
    waiting = waiting_states([job], busy=busy, views=farm).get(job.pk) if position else None
    return _job_dict(job, place, with_outputs=with_outputs, results=results, waiting=waiting)


def present_jobs(jobs: Iterable[Job], *, position: bool = True) -> list[dict]:
    """A list of jobs (a page, a WebSocket's snapshot), with the queue positions of all of
    them read in one query."""
    jobs = list(jobs)
    places = queue_positions(jobs) if position else {}
    waiting = waiting_states(jobs) if position else {}
    return [_job_dict(job, places.get(job.pk), waiting=waiting.get(job.pk)) for job in jobs]


def _job_dict(
    job: Job,
    position: int | None,
    *,
    with_outputs: bool = True,
    results: list | None = None,
    waiting: tuple | None = None,
) -> dict:
    code, missing = waiting or ("", [])
    data = {
        "id": str(job.id),
        "status": job.status,
        "workflow": job.workflow.slug,
        "workflow_name": job.workflow.name_in(get_language()),
        "workflow_version": job.workflow.version,
        "progress": round(job.progress, 4),
        "progress_text": job.progress_text,
        "position": position,
        # Why a queued job cannot start now (no server online, none has its classes or model
        # files, all able ones busy), in the reader's language; "" when it only waits its turn.
        "waiting_reason": reason_text(code, missing),
        "waiting_code": code,
        "waiting_missing": missing,
        "model_files": list(job.model_files or []),
        "node": job.node.name if job.node_id and job.node else None,
        "attempts": job.attempts,
        "error": job.error,
        "inputs": job.inputs,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "cancel_requested": job.cancel_requested,
        "shareable": job.shareable,
        # The number of the job's last change in its owner's event sequence (jobs.cursors):
        # the cursor a /ws/jobs/ client resumes from.
        "seq": job.seq,
    }
    if with_outputs:
        if results is None:
            results = [f for f in job.files.all() if f.kind == JobFile.Kind.RESULT]
        data["outputs"] = [present_file(f) for f in sorted(results, key=lambda f: (f.source_ref, f.created_at))]
    return data


def job_durations(job: Job, now: datetime | None = None) -> dict:
    """How long the job waited in the queue and ran on a GPU server, in whole seconds: up to now
    while it still waits or runs (``waiting_now``/``running_now``), else up to when it started or
    ended. A job cancelled in the queue never ran (``ran_seconds`` None)."""
    now = now or timezone.now()
    created, started, finished = job.created_at, job.started_at, job.finished_at
    waiting_now = job.status == Job.Status.QUEUED
    running_now = job.status == Job.Status.RUNNING and started is not None
    waited = None
    if created is not None:
        waited_until = started or finished or now
        waited = max(0, round((waited_until - created).total_seconds()))
    ran = None
    if started is not None:
        ran = max(0, round(((now if running_now else finished or now) - started).total_seconds()))
    return {
        "waited_seconds": waited,
        "ran_seconds": ran,
        "waiting_now": waiting_now,
        "running_now": running_now,
        "waited_text": duration_text(waited) if waited is not None else "",
        "ran_text": duration_text(ran) if ran is not None else "",
    }


def duration_text(seconds: int) -> str:
    """ "3 s", "2 min 5 s", "1 h 4 min": the two largest units (static/js/jobs-live.js writes the same)."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)s h %(min)s min") % {"h": hours, "min": minutes}
    if minutes:
        return _("%(min)s min %(s)s s") % {"min": minutes, "s": secs}
    return _("%(s)s s") % {"s": secs}
