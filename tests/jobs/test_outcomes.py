"""The end of a job in one database step: results stored, status set, the event built."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from PIL import Image

from jobs import outcomes
from jobs.models import Job
from jobs.presenters import for_presenting, present_job
from tests.factories import make_job, make_node, make_workflow

pytestmark = pytest.mark.django_db
S = Job.Status


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def claimed_job(user) -> Job:
    job = make_job(user, make_workflow(), status=S.RUNNING, node=make_node(), started_at=timezone.now())
    return Job.objects.select_related("workflow", "node", "user").get(pk=job.pk)  # as the runner holds it


def test_the_event_says_what_the_row_says(alice):
    job = claimed_job(alice)
    event = outcomes.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    fresh = present_job(for_presenting(Job.objects.filter(pk=job.pk)).get())
    assert event["user_id"] == alice.pk
    assert event["job"] == fresh
    assert fresh["status"] == S.DONE and fresh["progress"] == 1.0 and len(fresh["outputs"]) == 1


def test_a_job_someone_else_ended_is_presented_as_they_left_it(alice):
    job = claimed_job(alice)
    Job.objects.filter(pk=job.pk).update(status=S.CANCELLED, error="Cancelled while running.")
    event = outcomes.finish_and_present(job, status=S.ERROR, message="node died")
    assert event["job"]["status"] == S.CANCELLED and event["job"]["error"] == "Cancelled while running."
