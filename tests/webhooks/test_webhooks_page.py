"""The webhooks page: add an endpoint (secret shown once), refuse an unsafe URL, redeliver."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(alice):
    client = Client()
    client.login(username="alice", password=PASSWORD)
    return client


def test_add_an_endpoint_and_see_its_secret_once(site, receiver):
    page = site.post("/webhooks/", {"action": "create", "url": receiver.url, "events": ["job.failed"]})
    assert page.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["job.failed"] and endpoint.secret in page.content.decode()
    assert endpoint.secret not in site.get("/webhooks/").content.decode()


def test_an_unsafe_url_is_refused_on_the_page(site, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    page = site.post("/webhooks/", {"action": "create", "url": "http://169.254.169.254/"})
    assert page.status_code == 400 and "not a public address" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_redeliver_from_the_page(site, alice, receiver):
    endpoint = WebhookEndpoint.objects.create(user=alice, url=receiver.url, secret="whsec_" + "A" * 44)
    now = timezone.now()
    row = WebhookDelivery.objects.create(
        message_id="msg_page",
        user=alice,
        endpoint=endpoint,
        url=receiver.url,
        event="job.failed",
        payload="{}",
        status="FAILED",
        give_up_at=now,
    )
    assert site.post("/webhooks/", {"action": "redeliver", "delivery": row.pk}).status_code == 302
    row.refresh_from_db()
    assert row.status == "SUCCEEDED" and len(receiver.requests) == 1


def test_rotate_the_signing_secret(site):
    page = site.post("/webhooks/", {"action": "rotate"})
    assert page.status_code == 200 and "whsec_" in page.content.decode()
