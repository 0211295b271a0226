"""A job page whose socket drops (the web restarts) catches up when it reconnects.

No runner here: the test ends the job in the database while the web is down, so no live
event is ever published for it. Only the page's resume (?since=<cursor>) can tell it.
"""

from __future__ import annotations

import pytest

from jobs import steps
from jobs.models import Job
from tests.browser.conftest import log_in, shot
from tests.factories import make_job, make_workflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_job_that_ends_while_the_socket_is_away_shows_done_after_the_reconnect(
    stack_factory, user_factory, new_context
):
    stack = stack_factory(nodes=0, workers=0)
    alice = user_factory("alice")
    job = make_job(alice, make_workflow(), status=Job.Status.RUNNING)
    steps.write_running_state({str(job.pk): (0.4, "step 2/5")})

    page = new_context(stack.web_url).new_page()
    log_in(page, "alice")
    page.goto(f"/jobs/{job.pk}/")
    page.wait_for_selector('#job-panel[data-status="RUNNING"]')
    page.wait_for_function("() => window.comfyPortalLiveSocket && window.comfyPortalLiveSocket.readyState === 1")
    page.evaluate("window.__samePage = true")  # gone if the page were loaded again

    stack.stop_web(0)
    page.wait_for_selector("p.live-banner:not([hidden])", timeout=10_000)
    assert page.inner_text("p.live-banner") == "Reconnecting…"
    shot(page, "live-reconnecting")
    assert steps.finish(job.pk, status=Job.Status.DONE, message="")  # while nobody listens

    stack.restart_web(0)
    page.wait_for_selector('#job-panel[data-status="DONE"]', timeout=45_000)
    assert page.evaluate("window.__samePage === true"), "the page was loaded again"
    page.wait_for_selector("p.live-banner", state="hidden")
    assert page.inner_text('#job-panel [data-field="status"]') == "Done"
    shot(page, "live-resumed")
