"""Webhooks: Standard Webhooks signatures, the events of a job's life, retries with backoff,
the delivery log and redelivery, and sending from the workers only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from jobs import lifecycle, steps
from jobs.models import Job
from tests.factories import make_node, make_workflow
from webhooks import delivery, tasks
from webhooks.models import WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny(db):
    return make_workflow("tiny")


def register(api, url, **extra) -> dict:
    response = api.post("/api/webhooks/endpoints", {"url": url, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def submit(api, **extra) -> dict:
    response = api.post("/api/jobs", {"workflow": "tiny", "inputs": {}, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_an_event_is_signed_per_standard_webhooks_with_the_job_as_get_returns_it(
    alice_api, tiny, receiver, django_capture_on_commit_callbacks
):
    endpoint = register(alice_api, receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    assert "secret" not in alice_api.get("/api/webhooks/endpoints").json()[0]
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_api.post(f"/api/jobs/{job['id']}/cancel").status_code == 200

    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    message = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
    assert message["type"] == "job.cancelled"
    assert message["data"] == alice_api.get(f"/api/jobs/{job['id']}").json()
    with pytest.raises(Exception, match="signature"):
        Webhook(delivery.new_secret()).verify(request["body"], request["headers"])
    tampered = request["body"].replace(b"CANCELLED", b"DONE")
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint["secret"]).verify(tampered, request["headers"])


def test_a_jobs_own_webhook_url_is_signed_with_the_users_signing_secret(
    alice_api, tiny, receiver, django_capture_on_commit_callbacks
):
    secret = alice_api.post("/api/webhooks/secret").json()["secret"]
    job = submit(alice_api, webhook_url=receiver.url + "?job=1")
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    [request] = receiver.requests
    assert request["path"] == "/hook?job=1"
    assert Webhook(secret).verify(request["body"], request["headers"])["data"]["id"] == job["id"]


def test_started_succeeded_and_failed_follow_the_lifecycle(
    alice, alice_api, tiny, receiver, django_capture_on_commit_callbacks
):
    register(alice_api, receiver.url, events=["job.started", "job.succeeded", "job.failed"])
    node = make_node()
    good, bad = submit(alice_api), submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.claim(  # ids as dispatch may hold them: a UUID, and SQLite's hex form
            {uuid.UUID(good["id"]): (node.pk, "p1", "c1"), uuid.UUID(bad["id"]).hex: (node.pk, "p2", "c2")},
            runner_id="r1",
            now=timezone.now(),
        )
    with django_capture_on_commit_callbacks(execute=True):
        steps.finish(good["id"], status=Job.Status.DONE, message="")
        steps.finish(bad["id"], status=Job.Status.ERROR, message="out of memory")
    events = sorted((b["data"]["id"], b["type"]) for b in receiver.bodies())
    assert events == sorted(
        [
            (good["id"], "job.started"),
            (bad["id"], "job.started"),
            (good["id"], "job.succeeded"),
            (bad["id"], "job.failed"),
        ]
    )
    failed = next(b for b in receiver.bodies() if b["type"] == "job.failed")
    assert failed["data"]["status"] == "ERROR" and failed["data"]["error"] == "out of memory"


def test_an_endpoint_gets_only_the_events_it_chose(alice_api, tiny, receiver, django_capture_on_commit_callbacks):
    register(alice_api, receiver.url, events=["job.succeeded"])
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_events_are_sent_by_a_worker_task_never_in_the_request(
    alice_api, tiny, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr("webhooks.receivers.async_task", lambda *args: queued.append(args))
    register(alice_api, receiver.url)
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    assert queued == [("webhooks.tasks.job_event", [job["id"]], "job.cancelled")]
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()
    tasks.job_event(*queued[0][1:])  # what the worker does
    assert len(receiver.requests) == 1


def test_jobs_nobody_listens_to_enqueue_nothing(alice_api, tiny, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("webhooks.receivers.async_task", lambda *args: queued.append(args))
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    assert queued == []


def test_retry_schedule_backs_off_exponentially_for_24_hours():
    schedule = delivery.retry_schedule(24)
    gaps = [b - a for a, b in zip(schedule, schedule[1:], strict=False)]
    assert gaps[:5] == [30, 60, 120, 240, 480]
    assert max(gaps) == 4 * 3600 and all(b >= a for a, b in zip(gaps, gaps[1:], strict=False))
    assert schedule[-1] <= 24 * 3600 < schedule[-1] + 4 * 3600
    assert len(schedule) == 14  # 0, 30 s, 1.5 min … 2.1 h, 4.3 h, then every 4 h up to 20.3 h


def _due_now(delivery_id):
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_failing_endpoint_is_retried_on_the_schedule_then_succeeds(
    alice_api, tiny, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [(500, {}, 0), (503, {}, 0), (200, {}, 0)]
    register(alice_api, receiver.url)
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == ("PENDING", 1, 500)
    assert timedelta(seconds=25) < row.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    assert tasks.deliver_due() == 0  # not due yet: nothing sent
    assert len(receiver.requests) == 1

    _due_now(row.pk)
    assert tasks.deliver_due() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("PENDING", 2, 503)
    assert timedelta(seconds=55) < row.next_attempt_at - timezone.now() <= timedelta(seconds=60)

    _due_now(row.pk)
    tasks.deliver_due()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.delivered_at is not None) == ("SUCCEEDED", 3, True)
    assert [a.status_code for a in WebhookAttempt.objects.filter(delivery=row)] == [500, 503, 200]
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {row.message_id}, "every try of a delivery carries the same webhook-id"


def test_timeouts_count_as_failures_and_retries_stop_after_the_window(
    alice_api, tiny, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_TIMEOUT = 0.3
    receiver.answers = [(200, {}, 1.0)]
    register(alice_api, receiver.url)
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    row = WebhookDelivery.objects.get()
    assert row.status == "PENDING" and row.last_error == "timed out after 0.3 s"

    # The last try inside the 24 h window fails: the delivery is given up.
    WebhookDelivery.objects.filter(pk=row.pk).update(give_up_at=timezone.now() + timedelta(seconds=10))
    _due_now(row.pk)
    tasks.deliver_due()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("FAILED", 2, None)


def test_deliveries_are_listed_with_attempts_and_can_be_redelivered(
    alice_api, bob_api, tiny, receiver, django_capture_on_commit_callbacks
):
    receiver.answers = [(500, {}, 0), (200, {}, 0)]
    register(alice_api, receiver.url)
    job = submit(alice_api)
    with django_capture_on_commit_callbacks(execute=True):
        alice_api.post(f"/api/jobs/{job['id']}/cancel")
    page = alice_api.get("/api/webhooks/deliveries", job=job["id"]).json()
    assert page["count"] == 1
    [item] = page["items"]
    assert (item["event"], item["status"], item["attempts"]) == ("job.cancelled", "PENDING", 1)
    assert bob_api.get(f"/api/webhooks/deliveries/{item['id']}").status_code == 404
    assert bob_api.post(f"/api/webhooks/deliveries/{item['id']}/redeliver").status_code == 404

    again = alice_api.post(f"/api/webhooks/deliveries/{item['id']}/redeliver")
    assert again.status_code == 202 and again.json()["status"] == "SUCCEEDED"
    detail = alice_api.get(f"/api/webhooks/deliveries/{item['id']}").json()
    assert [(a["number"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 500), (2, 200)]
    assert alice_api.get("/api/webhooks/deliveries", status="succeeded").json()["count"] == 1
    assert alice_api.get("/api/webhooks/deliveries", status="nope").status_code == 400


def test_endpoints_are_managed_per_user(alice_api, bob_api, receiver):
    endpoint = register(alice_api, receiver.url, description="orders")
    assert bob_api.get("/api/webhooks/endpoints").json() == []
    assert bob_api.delete(f"/api/webhooks/endpoints/{endpoint['id']}").status_code == 404
    changed = alice_api.patch(
        f"/api/webhooks/endpoints/{endpoint['id']}", {"is_active": False, "events": ["job.failed"]}
    )
    assert changed.status_code == 200 and changed.json()["events"] == ["job.failed"]
    new_secret = alice_api.post(f"/api/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"]
    assert new_secret != endpoint["secret"]
    assert alice_api.post("/api/webhooks/endpoints", {"url": receiver.url, "events": ["job.done"]}).status_code == 422
    assert alice_api.delete(f"/api/webhooks/endpoints/{endpoint['id']}").status_code == 204
    assert alice_api.get("/api/webhooks/endpoints").json() == []


def test_retries_and_settling_are_scheduled():
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    from billing.schedules import upsert_schedules as billing_schedules
    from webhooks.schedules import upsert_schedules as webhook_schedules

    webhook_schedules()
    billing_schedules()
    rows = {s.func: s.minutes for s in Schedule.objects.all()}
    assert rows["webhooks.tasks.deliver_due"] == 1 and rows["billing.tasks.settle_ended_jobs"] == 60
    for func in rows:
        assert callable(import_string(func))


def test_deliveries_filtered_by_a_malformed_job_id_is_400(alice_api):
    response = alice_api.get("/api/webhooks/deliveries", job="not-a-uuid")
    assert response.status_code == 400 and response.json()["errors"] == {"job": "not a job id"}
