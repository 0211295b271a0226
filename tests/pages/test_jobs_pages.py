"""My jobs, one job, and the cancel / retry / delete actions; only the owner sees a job."""

from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import Job, JobFile
from tests.factories import make_job
from tests.pages.conftest import result_file

pytestmark = pytest.mark.django_db


def test_my_jobs_lists_only_my_jobs(alice, bob, alice_client, tiny):
    mine = make_job(alice, tiny)
    theirs = make_job(bob, tiny)
    html = alice_client.get(reverse("my_jobs")).content.decode()
    assert f'data-job-id="{mine.pk}"' in html
    assert str(theirs.pk) not in html
    assert 'data-live-url="/ws/jobs/" data-live-cursor="0"' in html and "js/jobs-live.js" in html


def test_my_jobs_empty_state(alice_client):
    assert 'id="jobs-empty"' in alice_client.get(reverse("my_jobs")).content.decode()


def test_my_jobs_shows_status_progress_position_and_error(alice, alice_client, tiny):
    running = make_job(alice, tiny, status="RUNNING", progress=0.42, progress_text="step 8/20")
    failed = make_job(alice, tiny, status="ERROR", error="node exploded")
    queued = make_job(alice, tiny)
    html = alice_client.get(reverse("my_jobs")).content.decode()
    assert f'data-job-id="{running.pk}" data-status="RUNNING"' in html
    assert 'value="0.42" data-progress="0.42"' in html and 'aria-valuenow="42"' in html
    assert "step 8/20" in html
    assert f'data-job-id="{failed.pk}" data-status="ERROR"' in html and "node exploded" in html
    assert f'data-job-id="{queued.pk}" data-status="QUEUED"' in html and "Position in queue: 1" in html
    assert reverse("job_cancel", args=[queued.pk]) in html
    assert reverse("job_retry", args=[failed.pk]) in html


def test_my_jobs_status_filter(alice, alice_client, tiny):
    done = make_job(alice, tiny, status="DONE")
    queued = make_job(alice, tiny)
    html = alice_client.get(reverse("my_jobs"), {"status": "done"}).content.decode()
    assert str(done.pk) in html and str(queued.pk) not in html


def test_polling_partial(alice, alice_client, tiny):
    job = make_job(alice, tiny)
    response = alice_client.get(reverse("my_jobs"), {"partial": "list"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="job-list"') and str(job.pk) in html and "<html" not in html
    assert 'hx-trigger="every 2s [window.comfyPortalPoll === true]"' in html
    row = alice_client.get(reverse("job_detail", args=[job.pk]), {"partial": "row"}, HTTP_HX_REQUEST="true")
    assert row.content.decode().lstrip().startswith("<li") and f'data-job-id="{job.pk}"' in row.content.decode()


def test_job_page_shows_inputs_escaped(alice, alice_client, tiny):
    job = make_job(alice, tiny, inputs={"prefix": "<script>alert(1)</script>", "width": 64})
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'id="job-panel"' in html and f'data-job-id="{job.pk}"' in html


def test_prompt_with_script_submitted_through_the_form_is_escaped(alice, alice_client, tiny):
    alice_client.post(reverse("job_submit", args=["tiny"]), {"prefix": "<script>alert(1)</script>"})
    job = Job.objects.get(user=alice)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_error_text_is_escaped(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="ERROR", error="<img src=x onerror=alert(1)>")
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<img src=x" not in html


def test_someone_elses_job_is_404(alice, bob_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    assert bob_client.get(reverse("job_detail", args=[job.pk])).status_code == 404
    for name in ("job_cancel", "job_retry", "job_delete"):
        assert bob_client.post(reverse(name, args=[job.pk])).status_code == 404
    assert Job.objects.filter(pk=job.pk, status="DONE").exists()


def test_cancel_a_queued_job(alice, alice_client, tiny):
    job = make_job(alice, tiny)
    response = alice_client.post(reverse("job_cancel", args=[job.pk]))
    assert response.status_code == 302 and response.url == reverse("job_detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == "CANCELLED"


def test_cancel_with_htmx_returns_the_row(alice, alice_client, tiny):
    job = make_job(alice, tiny)
    response = alice_client.post(reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith("<li") and 'data-status="CANCELLED"' in html


def test_cancel_a_finished_job_says_why(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    response = alice_client.post(reverse("job_cancel", args=[job.pk]), follow=True)
    assert "already done" in response.content.decode()


def test_cancel_redirects_to_a_local_next_only(alice, alice_client, tiny):
    job = make_job(alice, tiny)
    response = alice_client.post(reverse("job_cancel", args=[job.pk]), {"next": "https://evil.example/"})
    assert response.url == reverse("job_detail", args=[job.pk])
    job2 = make_job(alice, tiny)
    response = alice_client.post(reverse("job_cancel", args=[job2.pk]), {"next": "/jobs/?status=QUEUED"})
    assert response.url == "/jobs/?status=QUEUED"


def test_retry_runs_again_with_the_same_inputs(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="ERROR", inputs={"width": 100, "color": 5, "prefix": "again"})
    response = alice_client.post(reverse("job_retry", args=[job.pk]))
    new = Job.objects.exclude(pk=job.pk).get()
    assert response.url == reverse("job_detail", args=[new.pk])
    assert new.inputs == job.inputs and new.status == "QUEUED"
    response = alice_client.post(reverse("job_retry", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert "HX-Redirect" in response.headers


def test_delete_a_finished_job_with_its_files(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    result_file(job)
    response = alice_client.post(reverse("job_delete", args=[job.pk]))
    assert response.status_code == 302 and response.url == reverse("my_jobs")
    assert not Job.objects.filter(pk=job.pk).exists() and not JobFile.objects.exists()


def test_delete_a_running_job_is_refused(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="RUNNING")
    response = alice_client.post(reverse("job_delete", args=[job.pk]), follow=True)
    assert "cancel the job before deleting it" in response.content.decode()
    assert Job.objects.filter(pk=job.pk).exists()


def test_job_page_shows_outputs_with_download(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    record = result_file(job)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert f'href="/api/files/{record.pk}?download=true" download' in html
    assert f"/api/files/{record.pk}?variant=thumb" in html
    assert '<dialog id="lightbox"' in html
