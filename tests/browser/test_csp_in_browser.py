"""In chromium, under the Content-Security-Policy: the main pages, the admin and /api/docs load and
work with zero policy violations; Swagger UI renders from our own static files; the live page's
WebSocket connects."""

from __future__ import annotations

import pytest

from jobs.files import store_result
from tests.browser.conftest import log_in, shot
from tests.factories import TINY_GRAPH, make_job, make_node
from tests.pages.conftest import all_widgets_spec, png_bytes
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Runs before any script of each page: records what the policy blocked.
VIOLATION_RECORDER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Violations:
    """Policy violations seen by a page: its securitypolicyviolation events and console errors."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console.append(message.text)

    def visit(self, url: str, *, ready: str | None = None) -> None:
        self.page.goto(url)
        if ready:
            self.page.wait_for_selector(ready)
        self.assert_none(url)

    def assert_none(self, where: str) -> None:
        self.page.wait_for_timeout(200)  # violation events are dispatched asynchronously
        events = self.page.evaluate("window.__csp || []")
        assert not events and not self.console, f"{where}: {events + self.console}"


def test_pages_admin_and_api_docs_without_violations(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    alice = user_factory("alice")
    user_factory("boss", role="ADMIN")
    spec = all_widgets_spec()  # a field of every kind: sliders, seed, image preview, mask painter
    workflow = Workflow.objects.create(
        slug=spec["slug"], name=spec["name"], version="1.0.0", category="tests", graph=TINY_GRAPH, spec=spec
    )
    job = make_job(alice, workflow, status="DONE")
    store_result(job=job, data=png_bytes(), source_ref="o.png")
    make_job(alice, workflow, status="QUEUED")
    make_node("gpu-1")

    context = new_context(stack.web_url)
    context.add_init_script(VIOLATION_RECORDER)
    page = context.new_page()
    seen = Violations(page)

    seen.visit("/login/", ready="#login-form")
    log_in(page, "alice")
    seen.assert_none("after logging in")
    seen.visit("/", ready=f"#workflow-{workflow.slug}")
    seen.visit(f"/w/{workflow.slug}/", ready="#workflow-form")
    page.set_input_files("#id_image", {"name": "p.png", "mimeType": "image/png", "buffer": png_bytes()})
    page.wait_for_function("() => document.getElementById('id_image-preview').naturalWidth > 0")  # a blob: preview
    seen.assert_none("the form with a picture chosen")
    seen.visit("/jobs/", ready="[data-job-row]")
    page.wait_for_function(  # the live socket is allowed to connect
        "() => window.comfyPortalLiveSocket && window.comfyPortalLiveSocket.readyState === 1"
    )
    seen.visit(f"/jobs/{job.pk}/", ready="#job-panel")
    seen.visit("/gallery/", ready="a[data-lightbox]")
    page.click("a[data-lightbox]")
    page.wait_for_function("() => document.getElementById('lightbox').open")
    seen.assert_none("the gallery's lightbox")
    shot(page, "csp-gallery")

    seen.visit("/api/docs", ready=".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() >= 20  # every operation is listed
    page.locator(".opblock-summary").first.click()
    page.wait_for_selector(".opblock.is-open .responses-table")
    seen.assert_none("Swagger UI with an operation opened")
    shot(page, "csp-api-docs")

    admin = new_context(stack.web_url)
    admin.add_init_script(VIOLATION_RECORDER)
    page = admin.new_page()
    seen = Violations(page)
    seen.visit("/login/", ready="#login-form")
    log_in(page, "boss")
    for url, ready in (
        ("/admin/", "#dashboard-link-module"),
        ("/admin-dashboard/", "#dashboard"),
        ("/admin/accounts/user/", "#result_list"),
        (f"/admin/accounts/user/{alice.pk}/change/", "#user_form"),
        ("/admin/accounts/user/add/", "#user_form"),
        ("/admin/nodes/comfynode/", "#result_list"),
        ("/admin/nodes/comfynode/add/", "#comfynode_form"),
        ("/admin/workflows/workflow/", "#result_list"),
        (f"/admin/workflows/workflow/{workflow.pk}/change/", "#workflow_form"),
        ("/admin/workflows/workflow/add/", "#workflow_form"),
        ("/admin/jobs/job/", "#result_list"),
        (f"/admin/jobs/job/{job.pk}/change/", "#job_form"),
    ):
        seen.visit(url, ready=ready)
    shot(page, "csp-admin-job")
    # The admin's own scripts run: selecting every row updates the action counter.
    seen.visit("/admin/accounts/user/", ready="#action-toggle")
    page.check("#action-toggle")
    page.wait_for_function("() => document.querySelector('.action-counter').textContent.startsWith('2 of 2')")
    seen.assert_none("the admin's select-all")
