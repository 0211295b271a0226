"""Content-Security-Policy (issue 20 item 14): every page a user or an admin meets carries the
strict policy, and none holds what the policy would block (inline scripts, event or style
attributes, style blocks). tests/browser/test_csp_in_browser.py checks the same in chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from jobs.files import store_result
from tests.factories import TINY_GRAPH, make_job, make_node
from tests.pages.conftest import all_widgets_spec, logged_in, png_bytes
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

REQUIRED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# What the policy blocks, as it would appear in a page's HTML.
BLOCKED = {
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "<style> block": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "event attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I),
    # htmx runs these with eval, which the policy forbids (and htmx's allowEval is off).
    "htmx code": re.compile(r"""\s(?:data-)?hx-on|hx-(?:vals|headers)\s*=\s*["']\s*(?:js|javascript):""", re.I),
}


def policy_of(response) -> dict[str, str]:
    header = response.get("Content-Security-Policy", "")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def assert_strict(response) -> None:
    path = response.request["PATH_INFO"]
    policy = policy_of(response)
    for directive, value in REQUIRED.items():
        assert policy.get(directive) == value, (path, directive, policy.get(directive))
    assert "unsafe" not in response["Content-Security-Policy"], path
    if "text/html" in response.get("Content-Type", ""):
        html = response.content.decode()
        for what, pattern in BLOCKED.items():
            found = pattern.search(html)
            assert found is None, f"{path}: {what}: {html[max(0, found.start() - 80) : found.end() + 80]}"


@pytest.fixture
def rows(alice):
    spec = all_widgets_spec()  # a field of every kind, the mask painter's included
    workflow = Workflow.objects.create(
        slug=spec["slug"], name=spec["name"], version="1.0.0", category="tests", graph=TINY_GRAPH, spec=spec
    )
    job = make_job(alice, workflow, status="DONE")
    result = store_result(job=job, data=png_bytes(), source_ref="o.png")
    node = make_node("gpu-1")
    return {"workflow": workflow, "job": job, "file": result, "node": node}


def test_pages_of_a_user(alice, rows):
    client = logged_in(alice)
    slug, job = rows["workflow"].slug, rows["job"]
    for url in ("/", f"/w/{slug}/", "/jobs/", f"/jobs/{job.pk}/", "/gallery/", f"/gallery/?workflow={slug}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
    file_response = client.get(f"/api/files/{rows['file'].pk}")
    assert file_response.status_code == 200
    assert_strict(file_response)


def test_pages_without_an_account():
    client = Client()
    for url, status in (("/login/", 200), ("/", 302), ("/api/docs", 200), ("/api/openapi.json", 200)):
        response = client.get(url)
        assert response.status_code == status, url
        assert_strict(response)
    assert_strict(client.post("/login/", {"username": "nobody", "password": "wrong"}))
    assert_strict(client.get("/api/me"))  # a JSON error


def test_api_docs_load_swagger_from_our_static_files():
    html = Client().get("/api/docs").content.decode()
    scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)
    styles = re.findall(r"<link[^>]*\shref=\"([^\"]+)\"", html)
    assert "/static/ninja/swagger-ui-bundle.js" in scripts and "/static/ninja/swagger-ui-init.js" in scripts
    assert all(url.startswith("/static/") for url in scripts + styles), scripts + styles
    assert '"validatorUrl": null' in html  # no badge image from validator.swagger.io


def test_websockets_to_this_host_are_allowed(settings):
    settings.ALLOWED_HOSTS = ["portal.example"]
    policy = policy_of(Client().get("/login/", headers={"host": "portal.example"}))
    assert policy["connect-src"].split() == ["'self'", "ws://portal.example"]
    secure = policy_of(Client().get("/login/", secure=True, headers={"host": "portal.example"}))
    assert secure["connect-src"].split() == ["'self'", "wss://portal.example"]


def test_every_admin_page(admin_user, rows):
    """The admin index, the dashboard, and the list, add and change page of every registered model."""
    client = logged_in(admin_user)
    urls = [reverse("admin:index"), reverse("admin_dashboard")]
    objects = {type(row): row for row in rows.values()} | {type(admin_user): admin_user}
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        obj = objects.get(model) or model.objects.first()
        if obj is not None:
            try:
                urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            except NoReverseMatch:
                pass
    checked = 0
    for url in urls:
        response = client.get(url)
        if response.status_code == 403:  # e.g. no add page for a model only the system creates
            continue
        assert response.status_code in (200, 302), (url, response.status_code)
        assert_strict(response)
        checked += 1
    assert checked >= 15


def test_no_template_holds_what_the_policy_blocks():
    """Every template of ours, partials only htmx renders included (static/js and static/css are
    where scripts and styles go; data reaches scripts through data-* attributes or json_script)."""
    from django.conf import settings

    roots = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    roots += [Path(settings.BASE_DIR) / app / "templates" for app in ("accounts", "nodes", "workflows", "jobs")]
    templates = [path for root in roots if root.exists() for path in root.rglob("*.html")]
    assert len(templates) > 15
    for path in templates:
        text = path.read_text()
        for what, pattern in BLOCKED.items():
            found = pattern.search(text)
            assert found is None, f"{path}: {what}: {text[max(0, found.start() - 80) : found.end() + 80]}"
