"""An accessibility check of the main pages with axe-core (pinned in package.json, installed by
tests/browser/conftest.py): no violation of impact serious or critical, in both languages.

axe is injected with Playwright's init script (the DevTools protocol), which the site's
Content-Security-Policy does not apply to; a <script> tag added to the page would be refused by
script-src 'self' (test_injecting_a_script_tag_is_refused_by_the_csp shows it).
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ensure_axe, log_in
from tests.factories import make_job, make_node, upload_example
from tests.pages.conftest import result_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERIOUS = ("serious", "critical")
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + "\\n      " + (n.failureSummary || "").replace(/\\n/g, "\\n      ")),
  }));
}"""


def serious_violations(page) -> list[dict]:
    page.wait_for_load_state("load")
    assert page.evaluate("() => typeof axe === 'object'"), "axe-core was not injected"
    violations = page.evaluate(RUN_AXE)
    for v in violations:
        if v["impact"] not in SERIOUS:  # reported, not failed
            print(f"{page.url}: [{v['impact']}] {v['id']}: {v['help']}")
    return [v for v in violations if v["impact"] in SERIOUS]


def readable(found: dict[str, list[dict]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']}")
            lines.extend(f"    {node}" for node in v["nodes"])
    return "\n".join(lines)


def _data(user_factory):
    alice = user_factory("alice")
    user_factory("root", role="ADMIN")
    filters = upload_example("image-filters")
    txt2img = upload_example("sd15-txt2img")
    done = make_job(alice, filters, status="DONE", inputs={"brightness": 1.2})
    result_file(done)
    failed = make_job(
        alice, txt2img, status="ERROR", error="The GPU server went away.", inputs={"prompt": "a cat", "seed": 42}
    )
    queued = make_job(alice, filters)  # no GPU server online: the job says why it waits
    make_node("gpu-off", status="OFFLINE")
    return filters, done, queued, failed


def test_the_main_pages_have_no_serious_or_critical_violations(stack_factory, user_factory, new_context):
    axe = ensure_axe()
    stack = stack_factory(nodes=0, workers=0)
    filters, done, queued, failed = _data(user_factory)
    found: dict[str, list[dict]] = {}

    def check(page, url: str, lang: str) -> None:
        page.goto(url)
        assert page.get_attribute("html", "lang") == lang, url  # the page is in the language checked
        violations = serious_violations(page)
        if violations:
            found[f"{url} ({lang})"] = violations

    for locale in ("en-GB", "ru-RU"):
        context = new_context(stack.web_url, locale=locale)
        context.add_init_script(path=str(axe))
        page = context.new_page()
        lang = locale[:2]
        check(page, "/login/", lang)
        log_in(page, "alice")
        jobs = (f"/jobs/{done.pk}/", f"/jobs/{queued.pk}/", f"/jobs/{failed.pk}/")
        pages = ("/", f"/w/{filters.slug}/", "/jobs/", *jobs, "/gallery/", "/usage/")
        for url in pages:
            check(page, url, lang)
        if locale == "en-GB":
            admin = new_context(stack.web_url, locale=locale)
            admin.add_init_script(path=str(axe))
            admin_page = admin.new_page()
            log_in(admin_page, "root")
            for url in ("/admin/", "/admin-dashboard/", "/admin/jobs/job/", "/admin/nodes/comfynode/"):
                check(admin_page, url, lang)
    assert not found, "axe found serious or critical violations:\n" + readable(found)


def test_injecting_a_script_tag_is_refused_by_the_csp(stack_factory, new_context):
    """Why the check injects axe as an init script: the site's CSP refuses an added <script>."""
    axe = ensure_axe()
    stack = stack_factory(nodes=0, workers=0)
    page = new_context(stack.web_url).new_page()
    page.goto("/login/")
    with pytest.raises(Exception, match="Content Security Policy|Refused"):
        page.add_script_tag(path=str(axe))
    assert page.evaluate("() => typeof window.axe") == "undefined"


def test_the_check_catches_a_critical_violation(stack_factory, new_context):
    """The check itself works under the CSP: an image without alt text is a critical violation."""
    axe = ensure_axe()
    stack = stack_factory(nodes=0, workers=0)
    context = new_context(stack.web_url)
    context.add_init_script(path=str(axe))
    page = context.new_page()
    page.goto("/login/")
    assert serious_violations(page) == []
    page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
    assert [v["id"] for v in serious_violations(page)] == ["image-alt"]
