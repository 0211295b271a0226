"""Admins change the site's default limits while it runs; users without their own limit follow."""

from __future__ import annotations

import pytest

from accounts.models import SiteSettings

pytestmark = pytest.mark.django_db


def test_env_default_then_admin_default_then_users_own(settings, alice):
    settings.DEFAULT_MAX_QUEUED_JOBS = 100
    assert alice.effective_max_queued_jobs == 100
    SiteSettings(max_queued_jobs=3).save()
    assert alice.effective_max_queued_jobs == 3
    alice.max_queued_jobs = 7
    assert alice.effective_max_queued_jobs == 7


def test_admin_default_applies_at_submit(alice, alice_api):
    from tests.factories import make_workflow

    make_workflow()
    SiteSettings(max_queued_jobs=1).save()
    assert alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).status_code == 201
    refused = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert refused.status_code == 429 and "limit 1" in refused.json()["detail"]
    assert alice_api.get("/api/me").json()["limits"]["max_queued_jobs"] == 1


def test_site_settings_in_django_admin(admin_user, client):
    client.force_login(admin_user)
    response = client.post(
        "/admin/accounts/sitesettings/add/",
        {"max_concurrent_jobs": "2", "max_queued_jobs": "", "daily_job_limit": "50"},
    )
    assert response.status_code == 302
    row = SiteSettings.objects.get()
    assert (row.pk, row.max_concurrent_jobs, row.daily_job_limit) == (1, 2, 50)
    assert client.get("/admin/accounts/sitesettings/add/").status_code == 403  # one row only
