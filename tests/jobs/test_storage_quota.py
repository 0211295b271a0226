"""Issue 20 item 9: a per-user storage quota, and uploads no job used expire."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import SiteSettings, User
from jobs import storage, tasks
from jobs.files import store_result
from jobs.models import Job, JobFile
from jobs.retention import delete_unused_uploads
from tests.factories import make_job, make_workflow, upload_example

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


def noise_png(side: int) -> bytes:
    """An image that compresses badly: its stored size is about 3 bytes a pixel."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


def upload(api, data: bytes, kind="image"):
    return api.multipart("/api/uploads", {"file": SimpleUploadedFile("x.png", data), "kind": kind})


def used(user) -> int:
    return User.objects.get(pk=user.pk).storage_used


def test_uploads_and_results_count_by_stored_size_and_deleting_gives_it_back(alice, alice_api):
    first = upload(alice_api, noise_png(64)).json()
    second = upload(alice_api, noise_png(32), kind="mask").json()
    assert used(alice) == first["size"] + second["size"] == sum(JobFile.objects.values_list("size", flat=True))
    job = make_job(alice, make_workflow(), status=Job.Status.DONE)
    result = store_result(job=job, data=noise_png(16), source_ref="output//r.png")
    assert used(alice) == first["size"] + second["size"] + result.size
    assert alice_api.delete(f"/api/files/{first['id']}").status_code == 204
    assert alice_api.delete(f"/api/jobs/{job.pk}").status_code == 204
    assert used(alice) == second["size"]
    job = make_job(alice, make_workflow("other"), status=Job.Status.DONE)
    store_result(job=job, data=noise_png(16), source_ref="output//r.png")
    job.delete()  # a cascade (as the Django Admin does) counts too
    assert used(alice) == second["size"]


def test_an_upload_that_does_not_fit_is_413_with_used_and_limit_and_nothing_is_kept(alice, alice_api, settings):
    settings.DEFAULT_STORAGE_QUOTA_MB = 1
    kept = upload(alice_api, noise_png(450)).json()  # ~610 KB stored
    assert used(alice) == kept["size"] > MIB // 3
    response = upload(alice_api, noise_png(450))
    assert response.status_code == 413
    body = response.json()
    assert body["detail"].startswith("storage:") and "Delete files" in body["detail"]
    assert (body["used"], body["limit"]) == (kept["size"], MIB)
    assert JobFile.objects.count() == 1 and used(alice) == kept["size"]


def test_a_users_own_quota_wins_over_the_site_default_from_the_admin(alice, alice_api, settings):
    settings.DEFAULT_STORAGE_QUOTA_MB = 1000
    SiteSettings.objects.create(storage_quota_mb=0)  # the site's default, set in the Django Admin
    assert upload(alice_api, noise_png(8)).status_code == 413
    User.objects.filter(pk=alice.pk).update(storage_quota_mb=5)
    response = upload(alice_api, noise_png(8))
    assert response.status_code == 201
    me = alice_api.get("/api/me").json()
    assert me["limits"]["storage_quota"] == 5 * MIB and me["storage_used"] == response.json()["size"]


def test_while_storage_is_full_jobs_are_refused_409_and_retry_copies_nothing(alice, alice_api, settings):
    workflow = make_workflow()
    done = make_job(alice, workflow, status=Job.Status.DONE)
    store_result(job=done, data=noise_png(64), source_ref="output//r.png")
    settings.DEFAULT_STORAGE_QUOTA_MB = 0
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert response.status_code == 409
    body = response.json()
    assert body["detail"].startswith("storage:") and body["used"] == used(alice) and body["limit"] == 0
    assert alice_api.post(f"/api/jobs/{done.pk}/retry").status_code == 409
    assert Job.objects.count() == 1 and JobFile.objects.count() == 1
    settings.DEFAULT_STORAGE_QUOTA_MB = 1
    assert alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).status_code == 201


def test_the_page_form_says_the_upload_does_not_fit(alice, client, settings):
    from tests.pages.conftest import png_bytes

    upload_example("image-filters")
    settings.DEFAULT_STORAGE_QUOTA_MB = 0
    client.force_login(alice)
    image = SimpleUploadedFile("cat.png", png_bytes(), content_type="image/png")
    response = client.post(reverse("job_submit", args=["image-filters"]), {"image": image, "blur_radius": "2"})
    assert response.status_code == 400
    assert "Delete files or jobs you no longer need" in response.content.decode()
    assert not JobFile.objects.exists()


def test_the_django_admin_edits_a_users_quota_and_shows_what_is_used(admin_user, alice, client):
    client.force_login(admin_user)
    page = client.get(reverse("admin:accounts_user_change", args=[alice.pk])).content.decode()
    assert 'name="storage_quota_mb"' in page and 'name="storage_used"' not in page
    page = client.get(reverse("admin:accounts_sitesettings_add")).content.decode()
    assert 'name="storage_quota_mb"' in page


def test_uploads_no_job_used_expire_after_the_setting_results_and_used_ones_stay(alice, alice_api, settings):
    settings.UPLOAD_UNUSED_HOURS = 24
    unused, used_by_job, recent = (upload(alice_api, noise_png(16 + i)).json()["id"] for i in range(3))
    job = make_job(alice, make_workflow(), status=Job.Status.DONE)
    JobFile.objects.filter(pk=used_by_job).update(job=job)
    result = store_result(job=job, data=noise_png(8), source_ref="output//r.png")
    day_ago = timezone.now() - timedelta(hours=25)
    JobFile.objects.exclude(pk=recent).update(created_at=day_ago)
    path = JobFile.objects.get(pk=unused).file.path

    settings.UPLOAD_UNUSED_HOURS = 0
    assert delete_unused_uploads() == 0
    settings.UPLOAD_UNUSED_HOURS = 24
    assert tasks.cleanup_retention() == 1  # the scheduled clean-up runs it
    assert set(JobFile.objects.values_list("pk", flat=True)) == {
        JobFile.objects.get(pk=used_by_job).pk,
        JobFile.objects.get(pk=recent).pk,
        result.pk,
    }
    assert not os.path.exists(path)
    assert used(alice) == sum(JobFile.objects.values_list("size", flat=True))


def test_the_clean_up_recounts_what_went_around_the_count(alice, bob, alice_api):
    upload(alice_api, noise_png(16))
    User.objects.filter(pk=alice.pk).update(storage_used=12345)
    User.objects.filter(pk=bob.pk).update(storage_used=999)
    assert storage.recount() == 2
    assert used(alice) == JobFile.objects.get().size and used(bob) == 0
    assert storage.recount() == 0


def test_a_submit_whose_upload_expires_meanwhile_is_refused_not_run_without_it(alice, alice_api, monkeypatch):
    from jobs import services

    upload_example("image-filters")
    upload_id = upload(alice_api, noise_png(16)).json()["id"]
    check = services._check_uploads

    def check_then_expire(user, spec, values):
        check(user, spec, values)
        JobFile.objects.filter(pk=upload_id).update(created_at=timezone.now() - timedelta(days=2))
        assert delete_unused_uploads() == 1  # the hourly clean-up, right between check and attach

    monkeypatch.setattr(services, "_check_uploads", check_then_expire)
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": upload_id}})
    assert response.status_code == 400
    assert response.json()["errors"] == {"image": "upload expired: upload the file again"}
    assert not Job.objects.exists()
