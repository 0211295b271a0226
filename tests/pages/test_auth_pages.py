"""Login, logout, blocked users, and the login requirement of every page."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import Job
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_login_page_renders_a_csrf_protected_form():
    response = Client().get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="login-form"' in html and "csrfmiddlewaretoken" in html


def test_login_then_logout(alice):
    client = Client(enforce_csrf_checks=False)
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("catalogue")
    assert client.get(reverse("catalogue")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert client.get(reverse("catalogue")).status_code == 302


def test_logout_needs_post(alice_client):
    assert alice_client.get(reverse("logout")).status_code == 405


def test_wrong_password_shows_an_error(alice):
    response = Client().post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert 'id="login-errors"' in response.content.decode()


def test_blocked_user_sees_the_reason_at_login():
    make_user("mallory", is_blocked=True, blocked_reason="too many NSFW prompts")
    client = Client()
    response = client.post(reverse("login"), {"username": "mallory", "password": PASSWORD})
    assert response.status_code == 200
    assert "too many NSFW prompts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_blocked_user_is_logged_out_on_the_next_request(alice, alice_client):
    alice.is_blocked, alice.blocked_reason = True, "abuse"
    alice.save()
    response = alice_client.get(reverse("my_jobs"), follow=True)
    assert response.redirect_chain[0] == (reverse("login"), 302)
    assert "abuse" in response.content.decode()
    assert alice_client.get(reverse("catalogue")).status_code == 302


@pytest.mark.parametrize(
    "name,args",
    [
        ("catalogue", []),
        ("workflow_form", ["tiny"]),
        ("job_submit", ["tiny"]),
        ("my_jobs", []),
        ("job_detail", [uuid.uuid4()]),
        ("gallery", []),
    ],
)
def test_pages_need_login(name, args):
    response = Client().get(reverse(name, args=args))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_submitting_the_workflow_form_needs_login(tiny):
    response = Client().post(reverse("job_submit", args=["tiny"]), {"width": "32"})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not Job.objects.exists()


@pytest.mark.parametrize("name", ["job_cancel", "job_retry", "job_delete", "file_delete"])
def test_actions_need_login_and_post(name, alice_client):
    url = reverse(name, args=[uuid.uuid4()])
    assert Client().post(url).status_code == 302
    assert alice_client.get(url).status_code == 405


def test_forms_are_csrf_protected(alice, every_widget):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    assert client.post(reverse("job_submit", args=["every-widget"]), {"prompt": "x"}).status_code == 403
    page = client.get(reverse("catalogue")).content.decode()
    assert "X-CSRFToken" in page  # htmx requests carry the token from <body hx-headers>
