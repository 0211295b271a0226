"""Personas and API helpers shared by every test (as healthchecks' hc/test.py does)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from django.test import Client

PASSWORD = "correct-horse-battery"


class Api:
    """A JSON client for /api/ that carries a bearer token."""

    def __init__(self, token: str | None = None):
        self.client = Client()
        self.token = token

    def _headers(self, extra=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def get(self, path, **params):
        return self.client.get(path, params, **self._headers())

    def post(self, path, data=None, **extra):
        return self.client.post(
            path, json.dumps(data if data is not None else {}), content_type="application/json", **self._headers(extra)
        )

    def post_raw(self, path, body: bytes | str, content_type="application/json"):
        return self.client.post(path, body, content_type=content_type, **self._headers())

    def multipart(self, path, data):
        return self.client.post(path, data, **self._headers())

    def patch(self, path, data):
        return self.client.patch(path, json.dumps(data), content_type="application/json", **self._headers())

    def delete(self, path):
        return self.client.delete(path, **self._headers())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """Close the worker thread's database connections before the test database is dropped."""
    yield
    close_worker_thread_connections()


def close_worker_thread_connections() -> None:
    """Async tests call the ORM through sync_to_async, which outside an async_to_sync context runs
    in asgiref's one shared worker thread; Django keeps that thread's connection open, and
    PostgreSQL refuses to drop a database with a session on it ("being accessed by other users").
    connections.close_all() closes only the calling thread's connections, so it runs there."""
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def make_user(username: str, role: str = "USER", **fields):
    from accounts.models import User

    user = User(username=username, role=role, **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


def token_for(user) -> str:
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


WS_ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


def communicator(path: str, headers=WS_ORIGIN):
    """A WebSocket client for the ASGI app in this process (channels' test communicator)."""
    from channels.testing import WebsocketCommunicator

    from comfyportal.asgi import application

    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def ws_user(transactional_db):
    """A user with an access token, for /ws/jobs/?token=… (sockets need committed rows)."""
    user = make_user("carol")
    user.token = token_for(user)
    return user


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


@pytest.fixture
def admin_user(db):
    return make_user("root", role="ADMIN")


@pytest.fixture
def anon_api():
    return Api()


@pytest.fixture
def alice_api(alice):
    return Api(token_for(alice))


@pytest.fixture
def bob_api(bob):
    return Api(token_for(bob))


@pytest.fixture
def admin_api(admin_user):
    return Api(token_for(admin_user))


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request through the test client leaves its
    language active on the thread."""
    from django.conf import settings as django_settings
    from django.utils import translation

    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_site_defaults():
    """Site defaults, workflows and nodes are kept per process; tests start without them."""
    from accounts.models import SiteSettings
    from jobs.scheduler import forget_kept_nodes
    from nodes.farm import forget_kept
    from workflows.services import forget_kept_workflows

    SiteSettings._cached = None
    forget_kept_workflows()
    forget_kept_nodes()
    forget_kept()
    yield
    SiteSettings._cached = None
