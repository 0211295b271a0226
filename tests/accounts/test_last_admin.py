"""The last active admin cannot be deleted, demoted, deactivated or blocked: API, services, Django Admin."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts import services
from accounts.models import User
from core.errors import Conflict
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

REFUSED = "would leave no active admin; make another user an admin first."


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def is_active_admin(user) -> bool:
    user = User.objects.filter(pk=user.pk).first()
    return user is not None and user.role == "ADMIN" and user.is_active and not user.is_blocked


# --- API --------------------------------------------------------------------------------------------


def test_the_only_admin_cannot_demote_themselves_through_the_api(admin_api, admin_user):
    response = admin_api.patch(f"/api/admin/users/{admin_user.pk}", {"role": "USER"})
    assert response.status_code == 409
    assert response.json()["detail"] == "role: this " + REFUSED
    assert response.json()["errors"] == {"role": "would leave no active admin"}
    assert is_active_admin(admin_user)


def test_an_admin_may_step_down_when_another_admin_remains(admin_api, admin_user):
    make_user("second", role="ADMIN")
    assert admin_api.patch(f"/api/admin/users/{admin_user.pk}", {"role": "USER"}).status_code == 200
    assert not is_active_admin(admin_user)


def test_a_blocked_admin_does_not_count_as_the_other_admin(admin_api, admin_user):
    make_user("blocked-admin", role="ADMIN", is_blocked=True)
    make_user("inactive-admin", role="ADMIN", is_active=False)
    assert admin_api.patch(f"/api/admin/users/{admin_user.pk}", {"role": "USER"}).status_code == 409


# --- services -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "remove",
    [
        lambda root, other: services.delete_user(user=root, actor=other),
        lambda root, other: services.update_user(user=root, changes={"role": "USER"}, actor=other),
        lambda root, other: services.update_user(user=root, changes={"is_active": False}, actor=other),
        lambda root, other: services.update_user(user=root, changes={"is_blocked": True}, actor=other),
        lambda root, other: services.block_user(user=root, reason="x"),
    ],
    ids=["delete", "demote", "deactivate", "block", "block_user"],
)
def test_services_refuse_to_remove_the_last_admin(admin_user, alice, remove):
    with pytest.raises(Conflict, match="no active admin"):
        remove(User.objects.get(pk=admin_user.pk), alice)
    assert is_active_admin(admin_user)

    make_user("second", role="ADMIN")
    remove(User.objects.get(pk=admin_user.pk), alice)
    assert not is_active_admin(admin_user)


def test_other_changes_of_the_last_admin_are_accepted(admin_user, alice):
    services.update_user(user=admin_user, changes={"priority": 5, "role": "ADMIN", "is_blocked": False})
    services.delete_user(user=alice, actor=admin_user)
    assert is_active_admin(admin_user) and User.objects.get(pk=admin_user.pk).priority == 5


# --- Django Admin -----------------------------------------------------------------------------------


def change_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "email": "",
        "first_name": "",
        "last_name": "",
        "role": user.role,
        "is_active": "on",
        "blocked_reason": "",
        "priority": "1",
        "max_concurrent_jobs": "",
        "max_queued_jobs": "",
        "daily_job_limit": "",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


@pytest.mark.parametrize(
    "changes",
    [{"role": "USER"}, {"is_active": None}, {"is_blocked": "on", "blocked_reason": "x"}],
    ids=["demote", "deactivate", "block"],
)
def test_the_admin_change_form_refuses_to_remove_the_last_admin(admin_user, changes):
    client = logged_in(admin_user)
    url = f"/admin/accounts/user/{admin_user.pk}/change/"
    response = client.post(url, change_form(admin_user, **changes))
    assert response.status_code == 200  # the form again, with the reason
    assert REFUSED in response.content.decode()
    assert is_active_admin(admin_user)

    assert client.post(url, change_form(admin_user, priority="3")).status_code == 302
    assert User.objects.get(pk=admin_user.pk).priority == 3


def test_the_admin_change_form_lets_an_admin_go_when_another_remains(admin_user):
    other = make_user("second", role="ADMIN")
    response = logged_in(admin_user).post(f"/admin/accounts/user/{other.pk}/change/", change_form(other, role="USER"))
    assert response.status_code == 302
    assert not is_active_admin(other)


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_admin_delete_page_refuses_the_last_admin(admin_user, method):
    client = logged_in(admin_user)
    response = getattr(client, method)(f"/admin/accounts/user/{admin_user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["user: this " + REFUSED]
    assert is_active_admin(admin_user)


def test_the_admin_delete_page_deletes_an_admin_when_another_remains(admin_user):
    other = make_user("second", role="ADMIN")
    response = logged_in(admin_user).post(f"/admin/accounts/user/{other.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not User.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize("confirmed", [False, True])
def test_the_admin_delete_action_refuses_to_delete_every_admin(admin_user, alice, confirmed):
    other = make_user("second", role="ADMIN")
    data = {"action": "delete_selected", "_selected_action": [admin_user.pk, other.pk, alice.pk]}
    if confirmed:
        data["post"] = "yes"
    response = logged_in(admin_user).post("/admin/accounts/user/", data)
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["user: this " + REFUSED]
    assert User.objects.filter(pk__in=[admin_user.pk, other.pk, alice.pk]).count() == 3


def test_the_admin_delete_action_still_deletes_users(admin_user, alice):
    data = {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"}
    response = logged_in(admin_user).post("/admin/accounts/user/", data)
    assert response.status_code == 302 and not User.objects.filter(pk=alice.pk).exists()
