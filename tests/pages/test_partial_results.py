"""What a failed job made (part of what its workflow promises) is shown on its page as partial
results, never as the job's result: not under "Results", not in the jobs list, not in the gallery."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_job
from tests.pages.conftest import result_file

pytestmark = pytest.mark.django_db


def test_a_failed_job_shows_what_it_made_as_partial_results(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="ERROR", error="Incomplete result: output node 3 (SaveImage) produced no image.")
    record = result_file(job)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'id="partial-results"' in html and "Partial results — not what the workflow promised" in html
    assert f"/api/files/{record.pk}?variant=thumb" in html  # still visible, and downloadable
    assert "<h2>Results</h2>" not in html
    assert "produced no image" in html
    html = alice_client.get(reverse("job_detail", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Частичные результаты — не то, что обещал сценарий" in html


def test_a_done_job_shows_its_results_as_results(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    result_file(job)
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "<h2>Results</h2>" in html and 'id="partial-results"' not in html


def test_partial_results_are_not_in_the_jobs_list_or_the_gallery(alice, alice_client, tiny):
    failed = result_file(make_job(alice, tiny, status="ERROR", error="Incomplete result"))
    done = result_file(make_job(alice, tiny, status="DONE"), color=(1, 2, 3), ref="done.png")
    jobs = alice_client.get(reverse("my_jobs")).content.decode()
    assert f"/api/files/{done.pk}?variant=thumb" in jobs
    assert str(failed.pk) not in jobs
    gallery = alice_client.get(reverse("gallery")).content.decode()
    assert f'data-file-id="{done.pk}"' in gallery and str(failed.pk) not in gallery
