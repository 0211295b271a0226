"""Retention: delete results and uploads older than RESULT_RETENTION_DAYS (off by default)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.files import delete_files
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
