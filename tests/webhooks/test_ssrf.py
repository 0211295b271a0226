"""Webhook URLs may not reach the portal's own network: refused when saved and again at each
delivery (DNS rebinding), redirects never followed, requests sent to the checked address."""

from __future__ import annotations

import socket

import pytest
from django.utils import timezone

from core.safe_url import UnsafeUrl, check_url
from tests.factories import make_workflow
from webhooks import delivery
from webhooks.models import WebhookDelivery

REAL_GETADDRINFO = socket.getaddrinfo
PUBLIC = "93.184.215.14"


def fake_dns(monkeypatch, table: dict[str, list[str]], calls: list | None = None):
    """Names in `table` resolve to the addresses given (a list of lists: one per lookup, the last repeated)."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host in table:
            if calls is not None:
                calls.append(host)
            answers = table[host]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            family = socket.AF_INET6
            return [
                (family if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in addresses
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1, which is not a public address"),
        ("http://127.1/hook", "127.0.0.1"),  # short form
        ("http://2130706433/hook", "127.0.0.1"),  # decimal
        ("http://0x7f000001/hook", "127.0.0.1"),  # hexadecimal
        ("http://0177.0.0.1/hook", "127.0.0.1"),  # octal
        ("http://0.0.0.0:8000/", "0.0.0.0"),
        ("http://[::1]/hook", "::1"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),  # IPv4-mapped IPv6
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),  # NAT64 of the metadata address
        ("http://10.0.0.5/hook", "10.0.0.5"),
        ("http://172.16.3.4/hook", "172.16.3.4"),
        ("http://192.168.1.1/hook", "192.168.1.1"),
        ("http://100.64.0.1/hook", "100.64.0.1"),  # carrier-grade NAT
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # cloud metadata
        ("http://[fe80::1]/hook", "fe80::1"),
        ("http://[fd00::1]/hook", "fd00::1"),
        ("http://224.0.0.1/hook", "224.0.0.1"),
        ("http://localhost:8000/hook", "must not point at localhost"),
        ("http://metadata.google.internal/computeMetadata/v1/", "must not point at metadata.google.internal"),
        ("http://internal.example/hook", "10.1.2.3"),  # a name resolving to a private address
        ("http://mixed.example/hook", "10.9.9.9"),  # one public, one private address
        ("http://user:pw@public.example/hook", "user name or password"),
        ("http://public.example@127.0.0.1/hook", "user name or password"),
        ("ftp://public.example/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "http:// or https://"),
        ("http:///hook", "must name a host"),
        ("http://public.example:99999/", "not a valid URL"),
        ("http://nowhere.invalid/hook", "does not resolve"),
        ("http://public.example/a b", "spaces"),
    ],
)
def test_unsafe_urls_are_refused(monkeypatch, url, reason):
    fake_dns(
        monkeypatch,
        {
            "internal.example": [["10.1.2.3"]],
            "mixed.example": [[PUBLIC, "10.9.9.9"]],
            "public.example": [[PUBLIC]],
            "nowhere.invalid": [[]],
        },
    )
    with pytest.raises(UnsafeUrl, match=reason.replace(".", r"\.").replace("[", r"\[")):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example/hook",
        "http://public.example:8080/x?y=1",
        f"http://{PUBLIC}/",
        "http://[2606:4700::1111]/",
    ],
)
def test_public_urls_are_accepted(monkeypatch, url):
    fake_dns(monkeypatch, {"public.example": [[PUBLIC]]})
    assert check_url(url) == url


def test_the_setting_allows_private_addresses():
    assert check_url("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(UnsafeUrl):
        check_url("file:///etc/passwd", allow_private=True)


@pytest.mark.django_db
def test_unsafe_urls_are_refused_when_saved(alice_api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    make_workflow("tiny")
    endpoint = alice_api.post("/api/webhooks/endpoints", {"url": "http://169.254.169.254/"})
    assert endpoint.status_code == 400 and endpoint.json()["detail"].startswith("url: resolves to 169.254.169.254")
    job = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}, "webhook_url": "http://10.0.0.1/"})
    assert job.status_code == 400 and job.json()["errors"] == {
        "webhook_url": "resolves to 10.0.0.1, which is not a public address"
    }


@pytest.mark.django_db
def test_dns_rebinding_after_saving_is_refused_at_delivery(alice, monkeypatch, settings, receiver):
    """The name was public when saved and points inside when sent: the try is refused, logged, retried later."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    fake_dns(monkeypatch, {"rebind.example": [[PUBLIC], ["127.0.0.1"]]})
    endpoint = delivery.create_endpoint(user=alice, url=f"http://rebind.example:{receiver.port}/hook")
    row = _pending(alice, endpoint)
    assert delivery.attempt(row.pk) == "PENDING"
    row.refresh_from_db()
    assert row.last_error == "refused: the URL resolves to 127.0.0.1, which is not a public address"
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_request_goes_to_the_address_checked_not_a_second_lookup(alice, monkeypatch, receiver):
    lookups = []
    # A second lookup would answer an unroutable address: the request must not need one.
    fake_dns(monkeypatch, {"hooks.example": [["127.0.0.1"], ["127.0.0.1"], ["203.0.113.1"]]}, lookups)
    endpoint = delivery.create_endpoint(user=alice, url=f"http://hooks.example:{receiver.port}/hook")
    lookups.clear()
    row = _pending(alice, endpoint)
    assert delivery.attempt(row.pk) == "SUCCEEDED"
    assert lookups == ["hooks.example"]
    headers = {name.lower(): value for name, value in receiver.requests[0]["headers"].items()}
    assert headers["host"] == f"hooks.example:{receiver.port}"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(alice, receiver, status):
    receiver.answers = [(status, {"Location": f"http://127.0.0.1:{receiver.port}/internal-admin"}, 0)]
    endpoint = delivery.create_endpoint(user=alice, url=receiver.url)
    row = _pending(alice, endpoint)
    assert delivery.attempt(row.pk) == "PENDING"
    row.refresh_from_db()
    assert row.last_status_code == status and "redirects are not followed" in row.last_error
    assert [r["path"] for r in receiver.requests] == ["/hook"]


def _pending(user, endpoint) -> WebhookDelivery:
    now = timezone.now()
    return WebhookDelivery.objects.create(
        message_id=f"msg_test{endpoint.pk}",
        user=user,
        endpoint=endpoint,
        url=endpoint.url,
        event="job.succeeded",
        payload='{"type":"job.succeeded"}',
        next_attempt_at=now,
        give_up_at=now + timezone.timedelta(hours=24),
    )
