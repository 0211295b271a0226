"""Honest job pages in chromium: why a job waits (the list and the job page), its times in the
browser's zone and the page's language, how long it waited and ran as it moves on live, the
seed's copy button; and the admin under our name."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import log_in, publish, register_nodes, shot, submit_and_open_job
from tests.factories import TINY_GRAPH, make_job, make_node, tiny_spec, upload_example
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NO_SERVER = "No GPU server is online."
SECONDS = re.compile(r"^(?:(\d+) min )?(\d+) s$")


def seconds(text: str) -> int:
    match = SECONDS.match(text.strip())
    assert match, text
    return int(match.group(1) or 0) * 60 + int(match.group(2))


def _tiny() -> Workflow:
    spec = tiny_spec("tiny")
    return Workflow.objects.create(
        slug="tiny", name="Tiny", version="1.0.0", category="tools", graph=TINY_GRAPH, spec=spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
    )  # fmt: skip


def test_a_job_says_why_it_waits_then_times_its_wait_and_its_run_live(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 3, "cache_none": True})
    user_factory("alice")
    _tiny()
    context = new_context(stack.web_url, locale="en-GB", timezone_id="Asia/Tokyo")
    page = context.new_page()
    log_in(page, "alice")
    page.goto("/w/tiny/")
    submit_and_open_job(page)
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]

    # No GPU server yet: the job page says so, and its wait counts up.
    waiting = page.locator('#job-panel [data-field="waiting"]')
    waiting.wait_for(state="visible")
    assert waiting.inner_text() == NO_SERVER
    assert page.locator("#job-panel dt").all_inner_texts()[:2] == ["Queued", "Time in queue"]
    assert page.locator('#job-panel [data-field="started-at"]').count() == 0
    waited = page.locator('#job-panel [data-field="waited"] [data-duration]')
    first = seconds(waited.inner_text())
    page.wait_for_function(
        "(n) => { const el = document.querySelector('#job-panel [data-field=\"waited\"] [data-duration]');"
        " return el && el.textContent.trim() !== n; }",
        arg=waited.inner_text(),
    )
    assert seconds(waited.inner_text()) > first or first == 0

    # One date format, in the browser's time zone and the page's language.
    queued_at = page.locator('#job-panel [data-field="queued-at"] time')
    assert queued_at.get_attribute("title") == "Asia/Tokyo"
    expected = page.evaluate(
        "(iso) => new Intl.DateTimeFormat('en', {dateStyle: 'medium', timeStyle: 'medium'}).format(new Date(iso))",
        queued_at.get_attribute("datetime"),
    )
    assert queued_at.inner_text() == expected

    # The list says the same, in the row of the job.
    listing = context.new_page()
    listing.goto("/jobs/")
    row_waiting = listing.locator(f'#job-{job_id} [data-field="waiting"]')
    row_waiting.wait_for(state="visible")
    assert row_waiting.inner_text() == NO_SERVER
    publish(shot(listing, "21-job-list-waiting-reason"), "jobs-waiting-reason.png")
    shot(page, "22-job-page-waiting-reason")

    # A GPU server comes: the job runs and ends while both pages watch over /ws/jobs/.
    register_nodes(stack)
    page.wait_for_selector('#job-panel[data-status="DONE"]', timeout=60_000)
    listing.wait_for_selector(f'#job-{job_id}[data-status="DONE"]', timeout=30_000)
    dts = page.locator("#job-panel dt").all_inner_texts()
    assert dts[:5] == ["Queued", "Started", "Finished", "Time in queue", "Time running"], dts
    ran = seconds(page.inner_text('#job-panel [data-field="ran"] [data-duration]'))
    assert 2 <= ran <= 30  # the test node works 3 s on it
    assert seconds(page.inner_text('#job-panel [data-field="waited"] [data-duration]')) >= 1
    assert page.locator("#job-panel [data-live-since]").count() == 0  # nothing counts on after the end
    assert page.locator("#job-panel time[data-local-time]").count() == 3
    assert page.locator("#job-panel time[data-localized]").count() == 3  # the refreshed panel too
    row = listing.locator(f"#job-{job_id}")
    assert re.fullmatch(r"waited \d+( min \d+)? s, ran \d+( min \d+)? s", row.locator(".job-durations").inner_text())
    assert row.locator('[data-field="waiting"]').is_hidden()
    publish(shot(page, "23-job-page-times"), "job-times.png")


def test_the_waiting_reason_follows_the_gpu_servers_without_a_job_event(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    alice = user_factory("alice")
    tiny = _tiny()
    job = make_job(alice, tiny)
    context = new_context(stack.web_url)
    context.add_init_script("window.comfyPortalQueuedRefreshMs = 500;")
    page = context.new_page()
    log_in(page, "alice")
    page.goto("/jobs/")
    waiting = page.locator(f'#job-{job.pk} [data-field="waiting"]')
    waiting.wait_for(state="visible")
    assert waiting.inner_text() == NO_SERVER
    page.locator(f"#job-{job.pk} button").first.focus()  # on the row's Cancel button
    node = make_node("gpu-1", class_types=["EmptyImage", "SaveImage"])  # online, but lacks a class
    page.wait_for_function(
        f"() => (document.querySelector('#job-{job.pk} [data-field=\"waiting\"]') || {{}}).textContent"
        " === 'No online GPU server has the node classes: ImageInvert'"
    )
    # Only the reason was copied in: the focus stayed where it was.
    assert page.evaluate(f"() => document.activeElement.closest('#job-{job.pk}') !== null")
    node.status = "OFFLINE"
    node.save()
    detail = context.new_page()
    detail.goto(f"/jobs/{job.pk}/")
    assert detail.inner_text('#job-panel [data-field="waiting"]') == NO_SERVER


def test_the_seed_is_copied_with_one_click(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    alice = user_factory("alice")
    job = make_job(
        alice, upload_example("sd15-txt2img"), status="DONE", inputs={"prompt": "cat", "seed": 9007199254740991}
    )
    context = new_context(stack.web_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, "alice")
    page.goto(f"/jobs/{job.pk}/")
    page.click('button[data-copy-target="seed-seed"]')
    page.wait_for_function("() => document.querySelector('[data-copy-status]').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == "9007199254740991"


def test_the_admin_carries_our_name_and_marks_offline_servers(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    user_factory("root", role="ADMIN")
    make_node("gpu-off", status="OFFLINE")
    page = new_context(stack.web_url).new_page()
    log_in(page, "root")
    page.goto("/admin/")
    assert page.inner_text("#site-name") == "comfyportal"
    assert page.title() == "Administration | comfyportal"
    assert page.locator(".app-system caption").text_content().strip() == "System"
    assert page.locator(".app-django_q, .app-token_blacklist").count() == 0
    assert page.evaluate("() => document.querySelector('link[rel=icon]').href").endswith("/static/favicon.svg")
    page.click("#admin-dashboard-link")
    page.wait_for_selector("#dashboard")
    assert page.inner_text("#site-name") == "comfyportal"
    assert page.inner_text('[data-node="gpu-off"] [data-field="status"]') == "✕ Offline"
    size = page.evaluate(
        "() => Math.min(...[...document.querySelectorAll('#chart-jobs svg text')]"
        ".map(t => t.getBoundingClientRect().height))"
    )
    assert size >= 11  # drawn at its own size: the labels are not scaled down
    assert page.locator("#chart-jobs .chart-title").all_text_contents() == ["Hour (UTC)", "Jobs"]
    publish(shot(page, "24-admin-dashboard"), "admin-dashboard.png")
