"""Retention: delete results and uploads older than RESULT_RETENTION_DAYS (off by default), and
uploads no job used after UPLOAD_UNUSED_HOURS."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.files import delete_files, delete_stored
from jobs.models import Job, JobFile


def delete_expired(*, now=None) -> int:
    """Delete old files, never those of a job still QUEUED or RUNNING. Returns how many."""
    days = settings.RESULT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = JobFile.objects.filter(created_at__lt=cutoff).exclude(Q(job__status__in=Job.ACTIVE))
    count = old.count()
    delete_files(old)
    Job.objects.filter(finished_at__lt=cutoff, status__in=Job.FINISHED, files__isnull=True).delete()
    return count


def delete_unused_uploads(*, now=None) -> int:
    """Delete uploads older than UPLOAD_UNUSED_HOURS that no job uses. Returns how many.

    A job uses an upload from its submit on (the upload is attached to it, and a job's files go
    with the job), so an upload still unattached after that long was never used. Each row is
    deleted only if still unattached, then its file."""
    hours = settings.UPLOAD_UNUSED_HOURS
    if not hours:
        return 0
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    unused = JobFile.objects.filter(job__isnull=True, created_at__lt=cutoff).exclude(kind=JobFile.Kind.RESULT)
    count = 0
    for pk in list(unused.values_list("pk", flat=True)):
        # Locked and checked again: a submit attaching it meanwhile either wins (it stays) or
        # finds it gone and refuses the job (jobs.services._check_uploads_still_there).
        with transaction.atomic():
            record = JobFile.objects.select_for_update().filter(pk=pk, job__isnull=True).first()
            if record is None:
                continue
            record.delete()
        delete_stored(record)  # once the row is gone for good
        count += 1
    return count
