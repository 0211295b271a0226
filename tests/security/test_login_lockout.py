"""Failed logins lock out the address that fails, not the username: the right password from an
address that is not attacking still gets in, the admin's included. A slower per-username bound
stops guessing spread over many addresses, except from addresses the user logged in from before."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from tests.conftest import PASSWORD, Api

pytestmark = pytest.mark.django_db

ATTACKER, OWNER, ELSEWHERE = "203.0.113.66", "198.51.100.7", "192.0.2.200"


@pytest.fixture(autouse=True)
def _throttled(settings):
    settings.LOGIN_RATE_LIMIT = 3
    settings.LOGIN_USER_RATE_LIMIT = 0
    cache.clear()
    yield
    cache.clear()


def login(username: str, address: str, password: str = PASSWORD):
    return Api().post("/api/auth/token", {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(username: str, address: str, times: int) -> None:
    for _ in range(times):
        assert login(username, address, "wrong-wrong").status_code in (401, 429)


def test_failures_lock_the_attacking_address(alice):
    fail("alice", ATTACKER, 3)
    locked = login("alice", ATTACKER)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0


def test_the_right_password_from_another_address_still_gets_in(admin_user):
    fail(admin_user.username, ATTACKER, 20)
    assert login(admin_user.username, OWNER).status_code == 200


def test_the_page_login_from_another_address_still_gets_in(alice):
    fail("alice", ATTACKER, 20)
    client = Client(REMOTE_ADDR=OWNER)
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_an_address_guessing_across_usernames_is_locked_for_all_of_them(alice, bob):
    fail("alice", ATTACKER, 2)
    fail("nobody", ATTACKER, 1)
    assert login("bob", ATTACKER).status_code == 429
    assert login("bob", OWNER).status_code == 200


def test_hammering_a_locked_address_does_not_use_up_the_per_username_bound(settings, alice):
    """Refused attempts are not counted: one address cannot lock the username for everyone."""
    settings.LOGIN_USER_RATE_LIMIT = 5
    fail("alice", ATTACKER, 30)
    assert login("alice", ELSEWHERE).status_code == 200


def test_distributed_guessing_hits_the_per_username_bound(settings, alice):
    settings.LOGIN_RATE_LIMIT = 0
    settings.LOGIN_USER_RATE_LIMIT = 5
    assert login("alice", OWNER).status_code == 200  # alice's usual address, known from now on
    for n in range(5):
        assert login("alice", f"203.0.113.{n}", "wrong-wrong").status_code == 401
    refused = login("alice", ELSEWHERE)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 300
    assert login("alice", OWNER).status_code == 200, "an address alice logged in from before stays open"
    assert login("bob-is-not-here", ELSEWHERE, "x").status_code == 401, "other usernames are not affected"


def test_no_limits_when_both_are_off(settings, alice):
    settings.LOGIN_RATE_LIMIT = 0
    fail("alice", ATTACKER, 12)
    assert login("alice", ATTACKER).status_code == 200
