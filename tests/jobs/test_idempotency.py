"""Idempotency-Key on POST /api/jobs: one job per key and body, 422 for another body, safe under
concurrent retries (run this file with DATABASE_URL=postgres://… to test row locks)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs.models import IdempotencyKey, Job
from tests.conftest import Api, make_user, token_for
from tests.factories import make_workflow

BODY = {"workflow": "tiny", "inputs": {"width": 96}}


@pytest.mark.django_db
def test_the_same_key_and_body_give_the_same_job(alice_api):
    make_workflow("tiny")
    first = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="order-1")
    again = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="order-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1
    other = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="order-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert alice_api.post("/api/jobs", BODY).status_code == 201  # no key: a new job every time
    assert Job.objects.count() == 3


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(alice_api):
    make_workflow("tiny")
    assert alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = alice_api.post("/api/jobs", {**BODY, "inputs": {"width": 97}}, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Idempotency-Key:")
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user_and_last_24_hours(alice_api, bob_api, alice):
    make_workflow("tiny")
    a = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="shared").json()["id"]
    b = bob_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="shared")
    assert b.status_code == 201 and b.json()["id"] != a
    IdempotencyKey.objects.filter(user=alice).update(created_at=timezone.now() - timedelta(hours=25))
    later = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="shared")
    assert later.status_code == 201 and later.json()["id"] != a

    from jobs.idempotency import forget_expired

    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert forget_expired() == 2 and not IdempotencyKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there"])
def test_a_malformed_key_is_refused_naming_the_header(alice_api, key):
    make_workflow("tiny")
    response = alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and response.json()["detail"].startswith("Idempotency-Key:")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_invalid_body_stores_no_key(alice_api):
    make_workflow("tiny")
    assert alice_api.post("/api/jobs", {**BODY, "inputs": {"width": 1}}, HTTP_IDEMPOTENCY_KEY="k").status_code == 400
    assert alice_api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="k").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_retries_make_one_job():
    alice = make_user("alice")
    make_workflow("tiny")
    token = token_for(alice)
    barrier = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def retry():
        try:
            api = Api(token)
            barrier.wait()
            response = api.post("/api/jobs", BODY, HTTP_IDEMPOTENCY_KEY="retry-me")
            answers.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 8
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({job_id for _, job_id in answers}) == 1
    assert Job.objects.count() == 1 and IdempotencyKey.objects.count() == 1
