"""/api/me: the caller's limits and usage; the job counts come from the jobs app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from tests.factories import make_job, make_workflow

pytestmark = pytest.mark.django_db


def test_me_counts_the_callers_jobs_today_queued_and_running(alice, bob, alice_api):
    tiny = make_workflow("tiny")
    make_job(alice, tiny, status="QUEUED")
    make_job(alice, tiny, status="QUEUED")
    make_job(alice, tiny, status="RUNNING")
    yesterday = make_job(alice, tiny, status="DONE")
    Job.objects.filter(pk=yesterday.pk).update(created_at=timezone.now() - timedelta(days=2))
    make_job(bob, tiny, status="RUNNING")

    me = alice_api.get("/api/me").json()

    assert (me["jobs_today"], me["jobs_queued"], me["jobs_running"]) == (3, 2, 1)


def test_me_of_a_user_without_jobs_reports_zeros(alice_api):
    me = alice_api.get("/api/me").json()
    assert (me["jobs_today"], me["jobs_queued"], me["jobs_running"]) == (0, 0, 0)
