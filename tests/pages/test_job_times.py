"""Honest job pages: when a job was queued, started and finished, how long it waited and ran,
dates in one format, why a queued job waits, and the seed with a copy button."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from jobs.models import Job
from jobs.presenters import duration_text, job_durations
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def _job(user, workflow, *, status, queued_ago, started_ago=None, finished_ago=None, **fields) -> Job:
    now = timezone.now()
    job = make_job(user, workflow, status=status, **fields)
    Job.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=queued_ago),
        started_at=None if started_ago is None else now - timedelta(seconds=started_ago),
        finished_at=None if finished_ago is None else now - timedelta(seconds=finished_ago),
    )
    job.refresh_from_db()
    return job


def test_duration_text_uses_the_two_largest_units():
    assert duration_text(0) == "0 s"
    assert duration_text(59) == "59 s"
    assert duration_text(125) == "2 min 5 s"
    assert duration_text(3600 + 4 * 60 + 9) == "1 h 4 min"


def test_durations_of_a_finished_a_running_a_queued_and_a_cancelled_job(alice, tiny):
    done = _job(alice, tiny, status="DONE", queued_ago=100, started_ago=97, finished_ago=85)
    assert job_durations(done) | {} == {
        "waited_seconds": 3,
        "ran_seconds": 12,
        "waiting_now": False,
        "running_now": False,
        "waited_text": "3 s",
        "ran_text": "12 s",
    }
    running = _job(alice, tiny, status="RUNNING", queued_ago=50, started_ago=20)
    shown = job_durations(running)
    assert (shown["waited_seconds"], shown["running_now"]) == (30, True) and 19 <= shown["ran_seconds"] <= 21
    queued = _job(alice, tiny, status="QUEUED", queued_ago=40)
    shown = job_durations(queued)
    assert shown["waiting_now"] and 39 <= shown["waited_seconds"] <= 41 and shown["ran_seconds"] is None
    cancelled = _job(alice, tiny, status="CANCELLED", queued_ago=60, finished_ago=45)
    shown = job_durations(cancelled)
    assert (shown["waited_seconds"], shown["ran_seconds"], shown["waiting_now"]) == (15, None, False)


def test_a_queued_job_page_says_queued_not_started_and_counts_its_wait(alice, alice_client, tiny):
    job = _job(alice, tiny, status="QUEUED", queued_ago=7)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<dt>Queued</dt>" in html and "<dt>Started</dt>" not in html and "<dt>Finished</dt>" not in html
    assert "Time in queue" in html and f'data-live-since="{job.created_at.isoformat()}"' in html
    assert "Time running" not in html


def test_a_finished_job_page_shows_three_times_in_one_format_and_both_durations(alice, alice_client, tiny):
    job = _job(alice, tiny, status="DONE", queued_ago=100, started_ago=97, finished_ago=85)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    for at in (job.created_at, job.started_at, job.finished_at):
        local = timezone.localtime(at)
        assert (
            f'<time datetime="{at.isoformat()}" data-local-time>{date_format(local, "DATETIME_FORMAT")}</time>' in html
        )
    assert "<dt>Queued</dt>" in html and "<dt>Started</dt>" in html and "<dt>Finished</dt>" in html
    assert "<span data-duration>3 s</span>" in html and "<span data-duration>12 s</span>" in html
    assert "data-live-since" not in html  # nothing still grows
    assert "js/local-time.js" in html


def test_the_job_list_uses_the_same_date_format_and_shows_durations(alice, alice_client, tiny):
    job = _job(alice, tiny, status="DONE", queued_ago=100, started_ago=97, finished_ago=85)
    html = alice_client.get(reverse("my_jobs")).content.decode()
    local = timezone.localtime(job.created_at)
    assert f"data-local-time>{date_format(local, 'DATETIME_FORMAT')}</time>" in html
    assert 'data-field="waited">waited <span data-duration>3 s</span>' in html
    assert 'data-field="ran">ran <span data-duration>12 s</span>' in html


def test_dates_and_durations_in_russian(alice, alice_client, tiny):
    job = _job(alice, tiny, status="DONE", queued_ago=200, started_ago=190, finished_ago=60)
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get(reverse("job_detail", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Поставлена в очередь" in html and "Время в очереди" in html and "10 с" in html and "2 мин 10 с" in html
    assert 'data-live-label="duration-min">%(min)s мин %(s)s с<' in html


def test_the_waiting_reason_is_in_the_job_list_and_on_the_job_page(alice, alice_client, tiny):
    job = make_job(alice, tiny)  # no GPU server at all
    for url in (reverse("my_jobs"), reverse("job_detail", args=[job.pk])):
        html = alice_client.get(url).content.decode()
        assert '<span class="job-waiting" data-field="waiting">No GPU server is online.</span>' in html


def test_the_seed_of_a_job_has_a_copy_button(alice, alice_client, every_widget):
    job = make_job(alice, every_widget, inputs={"prompt": "cat", "seed": 9007199254740991})
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert '<span class="seed-value" id="seed-seed">9007199254740991</span>' in html
    assert 'data-copy-target="seed-seed"' in html and 'aria-label="Copy Seed"' in html and "js/copy-button.js" in html


def test_the_live_labels_are_translated_with_their_placeholders(alice, alice_client, tiny):
    job = make_job(alice, tiny)
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'data-live-label="waiting-missing_model">Ни у одного сервера в сети нет' in html
    assert 'data-live-label="waiting-missing_classes">Ни у одного сервера в сети нет классов узлов: %(names)s<' in html
    assert 'data-live-label="duration-s">%(s)s с<' in html


def test_the_list_says_waiting_and_running_while_they_last(alice, alice_client, tiny):
    queued = _job(alice, tiny, status="QUEUED", queued_ago=5)
    running = _job(alice, tiny, status="RUNNING", queued_ago=50, started_ago=20)
    html = alice_client.get(reverse("my_jobs")).content.decode()
    queued_row = html.split(f'id="job-{queued.pk}"')[1].split("</li>")[0]
    running_row = html.split(f'id="job-{running.pk}"')[1].split("</li>")[0]
    assert 'data-field="waited">waiting <span data-duration data-live-since=' in queued_row
    assert 'data-field="waited">waited <span data-duration>30 s</span>' in running_row
    assert 'data-field="ran">running <span data-duration data-live-since=' in running_row
