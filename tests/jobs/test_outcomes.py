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


def test_when_the_node_accepted_the_prompt_is_written_with_progress_or_with_the_end(alice):
    accepted = timezone.now()
    workflow, node = make_workflow(), make_node()
    followed, short = (Job.objects.select_related("workflow", "node", "user").get(
        pk=make_job(alice, workflow, status=S.RUNNING, node=node, started_at=accepted).pk) for _ in range(2))
    requeued = make_job(alice, workflow, status=S.QUEUED)
    outcomes.write_running_state({str(followed.pk): (0.5, "KSampler 10/20")},
                            {str(followed.pk): accepted, str(requeued.pk): accepted})
    followed.refresh_from_db()
    assert followed.submitted_at == accepted and followed.progress == 0.5
    assert Job.objects.get(pk=requeued.pk).submitted_at is None  # no longer running: not ours to stamp
    # A job that ends before the next progress write gets it with its ending.
    outcomes.finish_and_present(short, status=S.DONE, message="", submitted_at=accepted)
    assert Job.objects.get(pk=short.pk).submitted_at == accepted
