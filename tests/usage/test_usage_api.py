"""GET /api/usage: by day, workflow or user; own only unless admin; CSV; the usage page."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import FailedAttempt
from tests.conftest import PASSWORD
from tests.factories import make_job, make_workflow

pytestmark = pytest.mark.django_db


def at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(f"{day}T{hour:02d}:00:00"))


@pytest.fixture
def history(alice, bob):
    tiny, other = make_workflow("tiny"), make_workflow("other")

    def job(user, workflow, status, day, gpu, queue=1.0, outputs=1):
        return make_job(
            user,
            workflow,
            status=status,
            finished_at=at(day),
            gpu_seconds=gpu,
            queue_seconds=queue,
            output_count=outputs,
            output_bytes=1000 * outputs,
        )

    job(alice, tiny, "DONE", "2026-03-01", 2.5, queue=1.0)
    job(alice, tiny, "DONE", "2026-03-01", 1.5, queue=3.0, outputs=2)
    failed = job(alice, other, "ERROR", "2026-03-02", 0.7, outputs=0)
    job(alice, tiny, "CANCELLED", "2026-03-02", None, queue=None, outputs=0)
    job(bob, tiny, "DONE", "2026-03-02", 10.0)
    job(alice, tiny, "DONE", "2026-04-15", 99.0)  # outside the range
    FailedAttempt.objects.create(job=failed, number=1, ended_at=at("2026-03-02", 9), reason="node died")
    return alice, bob


RANGE = {"from": "2026-03-01", "to": "2026-03-31"}


def test_by_day_counts_billed_and_unbilled_time_and_failed_attempts(alice_api, history):
    data = alice_api.get("/api/usage", **RANGE).json()
    assert (data["from"], data["to"], data["group_by"]) == ("2026-03-01", "2026-03-31", "day")
    rows = {row["key"]: row for row in data["rows"]}
    assert set(rows) == {"2026-03-01", "2026-03-02"}
    first, second = rows["2026-03-01"], rows["2026-03-02"]
    assert (first["jobs"], first["succeeded"], first["gpu_seconds"], first["outputs"]) == (2, 2, 4.0, 3)
    assert first["avg_queue_seconds"] == 2.0 and first["output_bytes"] == 3000
    assert (second["jobs"], second["failed"], second["cancelled"], second["gpu_seconds"]) == (2, 1, 1, 0.0)
    assert (second["unbilled_gpu_seconds"], second["failed_attempts"]) == (0.7, 1)
    assert data["totals"] == {
        "jobs": 4,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 1,
        "gpu_seconds": 4.0,
        "unbilled_gpu_seconds": 0.7,
        "failed_attempts": 1,
        "outputs": 3,
        "output_bytes": 3000,
    }


def test_by_workflow(alice_api, history):
    rows = alice_api.get("/api/usage", group_by="workflow", **RANGE).json()["rows"]
    assert [(r["key"], r["jobs"], r["gpu_seconds"], r["failed_attempts"]) for r in rows] == [
        ("other", 1, 0.0, 1),
        ("tiny", 3, 4.0, 0),
    ]


def test_users_see_their_own_admins_anyone(alice_api, admin_api, history):
    refused = alice_api.get("/api/usage", user="bob", **RANGE)
    assert refused.status_code == 403 and refused.json()["detail"].startswith("user:")
    assert alice_api.get("/api/usage", user="all", **RANGE).status_code == 403
    bob = admin_api.get("/api/usage", user="bob", **RANGE).json()
    assert bob["totals"]["gpu_seconds"] == 10.0
    everyone = admin_api.get("/api/usage", user="all", group_by="user", **RANGE).json()
    assert [(r["key"], r["gpu_seconds"]) for r in everyone["rows"]] == [("alice", 4.0), ("bob", 10.0)]
    assert admin_api.get("/api/usage", user="nobody", **RANGE).status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "from"),
    ],
)
def test_bad_ranges_name_the_field(alice_api, params, field):
    response = alice_api.get("/api/usage", **params)
    assert response.status_code == 400 and field in response.json()["errors"]


def test_the_default_range_is_the_last_30_days(alice_api, alice):
    make_job(alice, make_workflow("tiny"), status="DONE", finished_at=timezone.now(), gpu_seconds=3.0)
    data = alice_api.get("/api/usage").json()
    assert data["to"] == timezone.localdate().isoformat()
    assert data["from"] == (timezone.localdate() - timedelta(days=29)).isoformat()
    assert data["totals"]["gpu_seconds"] == 3.0


def test_csv_export(alice_api, history):
    response = alice_api.get("/api/usage", format="csv", **RANGE)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "usage-2026-03-01-2026-03-31-by-day.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["day", "jobs", "succeeded"]
    assert [r[0] for r in rows[1:]] == ["2026-03-01", "2026-03-02", "total"]
    assert rows[-1][1] == "4"


def test_the_usage_page_shows_a_chart_and_exports_csv(history):
    site = Client()
    site.login(username="alice", password=PASSWORD)
    page = site.get("/usage/", RANGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="bar"') == 31 and 'data-value="4.0"' in html
    assert 'id="usage-user"' not in html  # only admins choose a user
    exported = site.get("/usage/export.csv", {**RANGE, "group_by": "workflow"})
    assert exported.status_code == 200 and exported.content.decode().splitlines()[1].startswith("other,1,")
    assert site.get("/usage/", {"from": "nope"}).status_code == 400


def test_admins_choose_whose_usage_the_page_shows(admin_user, history):
    site = Client()
    site.login(username="root", password=PASSWORD)
    html = site.get("/usage/", {**RANGE, "user": "all", "group_by": "user"}).content.decode()
    assert 'id="usage-user"' in html and 'data-key="bob"' in html and 'data-key="alice"' in html
