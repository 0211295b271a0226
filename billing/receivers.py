"""How billing reacts to jobs' signals; BillingConfig.ready() connects these receivers."""

from __future__ import annotations

from django.db import transaction

from billing import ledger
from jobs.models import Job


def hold_for_new_job(sender, job, workflow, **kwargs) -> None:
    """jobs' `job_created` (inside the submit's locked transaction): hold the price, or 402."""
    ledger.hold_for(job, workflow.slug)


def settle_finished_jobs(sender, job_ids, status, **kwargs) -> None:
    """jobs' `job_status_changed`: once a job has ended and that is committed, settle its hold."""
    if status not in Job.FINISHED or not ledger.enabled():
        return
    ids = list(job_ids)
    transaction.on_commit(lambda: [ledger.settle(job_id) for job_id in ids])
