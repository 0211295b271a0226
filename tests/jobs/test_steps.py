"""The end of a job in one database step: results stored, status set, the event built."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from jobs import steps
from jobs.follower import JobFollower
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
    event = steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    fresh = present_job(for_presenting(Job.objects.filter(pk=job.pk)).get())
    assert event["user_id"] == alice.pk
    assert event["job"] == fresh
    assert fresh["status"] == S.DONE and fresh["progress"] == 1.0 and len(fresh["outputs"]) == 1


def test_a_job_someone_else_ended_is_presented_as_they_left_it(alice):
    job = claimed_job(alice)
    Job.objects.filter(pk=job.pk).update(status=S.CANCELLED, error="Cancelled while running.")
    event = steps.finish_and_present(job, status=S.ERROR, message="node died")
    assert event["job"]["status"] == S.CANCELLED and event["job"]["error"] == "Cancelled while running."


def test_when_the_node_accepted_the_prompt_is_written_with_progress_or_with_the_end(alice):
    accepted = timezone.now()
    workflow, node = make_workflow(), make_node()
    followed, short = (
        Job.objects.select_related("workflow", "node", "user").get(
            pk=make_job(alice, workflow, status=S.RUNNING, node=node, started_at=accepted).pk
        )
        for _ in range(2)
    )
    requeued = make_job(alice, workflow, status=S.QUEUED)
    steps.write_running_state(
        {str(followed.pk): (0.5, "KSampler 10/20")},
        {str(followed.pk): (accepted, "comfyportal-kept"), str(requeued.pk): (accepted, "comfyportal-other")},
    )
    followed.refresh_from_db()
    assert followed.submitted_at == accepted and followed.progress == 0.5
    assert followed.client_id == "comfyportal-kept"  # the socket's id: an adopter follows it there
    assert Job.objects.get(pk=requeued.pk).submitted_at is None  # no longer running: not ours to stamp
    # A job that ends before the next progress write gets it with its ending.
    node_done = accepted + timedelta(seconds=1)
    steps.finish_and_present(short, status=S.DONE, message="", submitted_at=accepted, node_finished_at=node_done)
    ended = Job.objects.get(pk=short.pk)
    assert ended.submitted_at == accepted and ended.node_finished_at == node_done


def _stored_once_and_files_kept_tidy(job, settings) -> None:
    from pathlib import Path

    from jobs.files import store_result
    from jobs.models import JobFile

    first = store_result(job=job, data=png(), source_ref="output//a.png")
    files_after_first = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    again = store_result(job=job, data=png(), source_ref="output//a.png")  # a recovery collecting it again
    assert first is not None and again is None
    assert JobFile.objects.filter(job=job, kind="RESULT").count() == 1
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files_after_first
    assert (first.width, first.height, first.content_type) == (64, 48, "image/png")
    assert not first.thumbnail  # made when first asked for (jobs.files.ensure_thumbnail)


def test_a_result_collected_twice_is_stored_once_inside_a_transaction(alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    _stored_once_and_files_kept_tidy(claimed_job(alice), settings)


@pytest.mark.django_db(transaction=True)
def test_a_result_collected_twice_is_stored_once_in_autocommit(settings, tmp_path):
    """The runner stores results outside any transaction: the INSERT alone meets the constraint."""
    from tests.conftest import make_user

    settings.MEDIA_ROOT = tmp_path
    _stored_once_and_files_kept_tidy(claimed_job(make_user("carol")), settings)


@pytest.mark.django_db(transaction=True)
async def test_when_the_node_accepted_a_job_is_kept_when_the_job_ends_while_that_time_is_being_written():
    from asgiref.sync import sync_to_async

    from jobs.runner import Runner
    from tests.conftest import make_user

    job = await sync_to_async(lambda: claimed_job(make_user("dora")))()
    runner = Runner(health=False)
    follower = JobFollower(runner, job)
    try:
        await follower._submitted()
        batch, runner.submitted = runner.submitted, {}  # the progress writer took the batch…
        await follower._finish(S.DONE, "")  # …and the job ended before the batch's UPDATE ran,
        await runner.db(steps.write_running_state, {}, batch)  # which skips jobs no longer running
        fresh = await sync_to_async(Job.objects.get)(pk=job.pk)
        assert fresh.status == S.DONE and fresh.submitted_at == batch[str(job.pk)][0]
    finally:
        runner.executor.shutdown()
