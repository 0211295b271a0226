"""(e) Script-looking strings in every text field — job text inputs, workflow names,
descriptions, categories and field labels uploaded by an admin, usernames, node names — come
back from the API as JSON (never sniffable as HTML) and HTML-escaped on every page."""

from __future__ import annotations

import html
import json

import pytest
from django.urls import NoReverseMatch, Resolver404, resolve

from tests.conftest import make_user
from tests.factories import make_node
from tests.security.conftest import logged_in, spec_files, tiny_spec

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'
MARKERS = (SCRIPT, ATTR, "<img src=x", "<script>")


@pytest.fixture
def evil_workflow(admin_api):
    spec = tiny_spec("xss")
    spec["name"] = f"Name {SCRIPT}"
    spec["description"] = f"Desc {ATTR} {SCRIPT}"
    spec["category"] = f"cat{SCRIPT}"
    spec["inputs"][2]["label"] = f"Label {ATTR}"
    spec["inputs"][2]["help"] = f"Help {SCRIPT}"
    spec["inputs"][2]["placeholder"] = f"Placeholder {ATTR}"
    response = admin_api.multipart("/api/admin/workflows", spec_files(spec))
    if response.status_code == 400 and "category" in response.content.decode():
        spec["category"] = "tools"  # the spec may restrict categories to a slug: the rest still applies
        response = admin_api.multipart("/api/admin/workflows", spec_files(spec))
    assert response.status_code == 201, response.content
    assert_json(response)
    body = response.json()
    assert body["name"] == spec["name"]
    return spec


@pytest.fixture
def evil_job(alice_api, evil_workflow):
    response = alice_api.post("/api/jobs", {"workflow": "xss", "inputs": {"prefix": ATTR}})
    assert response.status_code == 201, response.content
    assert_json(response)
    assert response.json()["inputs"]["prefix"] == ATTR
    return response.json()["id"]


def assert_json(response) -> None:
    """JSON, declared as JSON, which browsers may not sniff as HTML."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert response["X-Content-Type-Options"] == "nosniff"
    json.loads(response.content)


def assert_escaped(page_html: str, *values: str) -> None:
    for marker in MARKERS:
        assert marker not in page_html, f"raw {marker!r} on the page"
    for value in values:
        assert html.escape(value, quote=False) in page_html or html.escape(value) in page_html, value


def page(client, path: str):
    """A page by a colleague may not exist yet: skip with the reason instead of failing."""
    try:
        resolve(path.split("?")[0])
    except (Resolver404, NoReverseMatch):
        pytest.skip(f"page {path} is not routed yet")
    response = client.get(path)
    if response.status_code == 404:
        pytest.skip(f"page {path} answers 404 (not written yet?)")
    assert response.status_code == 200, (path, response.status_code)
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


# --- API ------------------------------------------------------------------------------------------


def test_api_returns_workflow_texts_as_json(alice_api, evil_workflow):
    listing = alice_api.get("/api/workflows")
    assert_json(listing)
    names = [w["name"] for group in listing.json() for w in group["workflows"]]
    assert evil_workflow["name"] in names
    detail = alice_api.get("/api/workflows/xss")
    assert_json(detail)
    assert detail.json()["description"] == evil_workflow["description"]


def test_api_returns_job_text_inputs_as_json(alice_api, evil_job):
    for path in (f"/api/jobs/{evil_job}", "/api/jobs"):
        response = alice_api.get(path)
        assert_json(response)
        assert ATTR in json.dumps(response.json())


def test_api_error_messages_that_echo_input_are_json(alice_api, evil_workflow):
    response = alice_api.post("/api/jobs", {"workflow": SCRIPT, "inputs": {SCRIPT: ATTR}})
    assert response.status_code in (400, 404, 422)
    assert_json(response)
    response = alice_api.post("/api/jobs", {"workflow": "xss", "inputs": {"prefix": SCRIPT * 5, ATTR: 1}})
    assert response.status_code in (400, 422)
    assert_json(response)
    response = alice_api.get(f"/api/jobs?status={SCRIPT}")
    assert response.status_code in (400, 422)
    assert_json(response)
    response = alice_api.get(f"/api/no-such-route/{SCRIPT}")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_api_returns_usernames_and_node_names_as_json(admin_api, db):
    make_user(f"u{SCRIPT}")  # the API refuses such a name; the ORM (Django admin, imports) might not
    make_node(f"node{SCRIPT}")
    for path in ("/api/admin/users", "/api/admin/nodes"):
        response = admin_api.get(path)
        assert_json(response)
        assert SCRIPT in json.dumps(response.json())
    response = admin_api.post("/api/admin/users", {"username": SCRIPT, "password": "A-long-pass-123"})
    assert response.status_code == 422 and "username" in response.json()["errors"]


# --- pages ------------------------------------------------------------------------------------------


def test_job_detail_page_escapes_text_inputs(alice, evil_job):
    assert_escaped(page(logged_in(alice), f"/jobs/{evil_job}/"), ATTR)


def test_job_list_page_escapes_workflow_name(alice, evil_job, evil_workflow):
    assert_escaped(page(logged_in(alice), "/jobs/"), evil_workflow["name"])


def test_catalogue_escapes_workflow_texts(alice, evil_workflow):
    text = page(logged_in(alice), "/")
    assert_escaped(text, evil_workflow["name"])


def test_form_page_escapes_name_description_and_labels(alice, evil_workflow):
    text = page(logged_in(alice), "/w/xss/")
    assert_escaped(text, evil_workflow["name"], f"Label {ATTR}", f"Help {SCRIPT}")


def test_gallery_page_escapes(alice, evil_job):
    assert_escaped(page(logged_in(alice), "/gallery/"))  # no raw markers anywhere, whatever it shows


def test_username_is_escaped_in_every_page_menu(db, evil_workflow):
    user = make_user(f"eve{SCRIPT}")
    client = logged_in(user)
    for path in ("/", "/jobs/", "/gallery/", "/w/xss/"):
        assert_escaped(page(client, path), f"eve{SCRIPT}")


def test_admin_dashboard_escapes_node_and_user_names(admin_user, evil_job):
    make_node(f"node{SCRIPT}", status="ONLINE")
    assert_escaped(page(logged_in(admin_user), "/admin-dashboard/"))


def test_django_admin_escapes_user_and_workflow_names(admin_user, evil_workflow):
    make_user(f"eve{SCRIPT}")
    client = logged_in(admin_user)
    for path in ("/admin/accounts/user/", "/admin/workflows/workflow/", "/admin/jobs/job/"):
        response = client.get(path)
        if response.status_code == 404:
            continue
        assert response.status_code == 200, path
        body = response.content.decode()
        assert SCRIPT not in body and "<img src=x" not in body, path


def test_ws_events_carry_inputs_as_json_data(alice, evil_job):
    """Live events are JSON too; the page script must insert them as text (checked in the pages' JS tests)."""
    from jobs.models import Job
    from jobs.presenters import present_job

    payload = present_job(Job.objects.select_related("workflow", "node").get(pk=evil_job))
    assert json.loads(json.dumps(payload))["inputs"]["prefix"] == ATTR


def test_anonymous_login_page_escapes_a_reflected_username(db):
    from django.test import Client

    response = Client().post("/login/", {"username": ATTR, "password": "x"})
    assert response.status_code == 200
    assert_escaped(response.content.decode(), ATTR)
