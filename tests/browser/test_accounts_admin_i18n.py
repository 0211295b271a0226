"""In chromium: blocked users are cut off, admins add workflows live, the Russian UI, the dashboard."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import log_in, shot
from tests.factories import EXAMPLES, upload_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def block(stack, user, reason: str) -> None:
    """Block a user as an admin does, through the running web instance's admin API."""
    import httpx

    from tests.conftest import PASSWORD

    with httpx.Client(base_url=stack.web_url, timeout=30) as client:
        token = client.post("/api/auth/token", json={"username": "blocker", "password": PASSWORD}).json()["access"]
        response = client.patch(
            f"/api/admin/users/{user.pk}",
            json={"is_blocked": True, "blocked_reason": reason},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text


def test_a_blocked_user_is_logged_out_and_told_why(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    carol = user_factory("carol")
    dave = user_factory("dave")
    user_factory("blocker", role="ADMIN")

    # carol is on a page without a live socket: her next navigation lands on the login page.
    page = new_context(stack.web_url).new_page()
    log_in(page, "carol")
    page.goto("/gallery/")
    page.wait_for_selector("#gallery-empty")
    block(stack, carol, "Too many requests for faces of strangers")
    page.click("#nav-jobs")
    page.wait_for_selector("#login-form")
    assert re.search(r"/login/", page.url)
    assert page.locator("#user-menu").count() == 0  # logged out
    message = page.inner_text("#messages")
    assert "Your account is blocked: Too many requests for faces of strangers" in message
    shot(page, "08-blocked-logged-out")
    # …and she cannot sign in again; the form says why.
    page.fill("#id_username", "carol")
    page.fill("#id_password", "correct-horse-battery")
    page.click("#login-submit")
    page.wait_for_selector("#login-errors")
    assert "Your account is blocked: Too many requests for faces of strangers" in page.inner_text("#login-errors")
    page.goto("/jobs/")
    assert "/login/" in page.url

    # dave watches My jobs (live socket open): the server closes it and the page reloads to the login page.
    context = new_context(stack.web_url)
    live = context.new_page()
    log_in(live, "dave")
    live.goto("/jobs/")
    live.wait_for_function("() => window.comfyPortalLiveSocket && window.comfyPortalLiveSocket.readyState === 1")
    block(stack, dave, "Account shared with others")
    live.wait_for_url(re.compile(r".*/login/.*"), timeout=10_000)
    live.wait_for_selector("#login-form")
    assert "Your account is blocked: Account shared with others" in live.inner_text("#messages")


def _example_files(tmp_path, slug: str, *, spec_changes: dict) -> tuple:
    spec = json.loads((EXAMPLES / "image-filters" / "spec.json").read_text())
    spec.update(spec_changes)
    folder = tmp_path / slug
    folder.mkdir()
    (folder / "workflow.json").write_bytes((EXAMPLES / "image-filters" / "workflow.json").read_bytes())
    (folder / "spec.json").write_text(json.dumps(spec))
    return folder / "workflow.json", folder / "spec.json"


def test_admin_uploads_a_workflow_and_users_see_it_without_restart(stack_factory, user_factory, new_context, tmp_path):
    stack = stack_factory(nodes=0, workers=0)
    user_factory("alice")
    user_factory("root", role="ADMIN")
    upload_example("scale-crop")

    user_page = new_context(stack.web_url).new_page()
    log_in(user_page, "alice")
    user_page.wait_for_selector("#workflow-scale-crop")
    assert user_page.locator("#workflow-browser-filters").count() == 0

    admin = new_context(stack.web_url).new_page()
    log_in(admin, "root")
    admin.goto("/admin/workflows/workflow/add/")

    # An invalid pair: the spec binds to a node the graph does not have, and to an input a node lacks.
    bad_inputs = json.loads((EXAMPLES / "image-filters" / "spec.json").read_text())["inputs"]
    bad_inputs[1] = {**bad_inputs[1], "bind": [{"node": "99", "input": "blur_radius"}]}
    bad_inputs[3] = {**bad_inputs[3], "bind": [{"node": "3", "input": "no_such_input"}]}
    workflow_file, spec_file = _example_files(
        tmp_path, "bad", spec_changes={"slug": "broken-filters", "inputs": bad_inputs}
    )
    admin.set_input_files("#id_workflow_file", str(workflow_file))
    admin.set_input_files("#id_spec_file", str(spec_file))
    admin.click("input[name=_save]")
    admin.wait_for_selector(".errornote")
    errors = admin.inner_text("#workflow_form .errorlist")
    assert "node '99' is not in the workflow" in errors, errors
    assert "has no input 'no_such_input'" in errors, errors  # every problem is listed
    assert "/add/" in admin.url
    shot(admin, "09-admin-upload-invalid")
    # A workflow without its spec is refused too.
    admin.set_input_files("#id_workflow_file", str(workflow_file))
    admin.click("input[name=_save]")
    admin.wait_for_selector(".errornote")
    assert "Upload a spec.json too" in admin.inner_text("#workflow_form .errorlist")

    # A valid pair (the bundled image-filters under another slug) is stored and active at once.
    workflow_file, spec_file = _example_files(
        tmp_path,
        "good",
        spec_changes={"slug": "browser-filters", "name": "Filters uploaded in the browser", "version": "2.0.0"},
    )
    admin.set_input_files("#id_workflow_file", str(workflow_file))
    admin.set_input_files("#id_spec_file", str(spec_file))
    with admin.expect_navigation():
        admin.click("input[name=_save]")
    assert admin.url.endswith("/admin/workflows/workflow/"), admin.url
    assert "Filters uploaded in the browser" in admin.inner_text("#result_list")
    assert admin.locator(".messagelist .success").count() == 1
    shot(admin, "10-admin-workflow-list")

    # The same running web process shows it to the user on the next page load.
    user_page.reload()
    card = user_page.locator("#workflow-browser-filters")
    card.wait_for()
    assert "Filters uploaded in the browser" in card.inner_text() and "2.0.0" in card.inner_text()
    assert user_page.locator("#workflow-broken-filters").count() == 0
    card.locator("h3 a").click()
    user_page.wait_for_selector('#workflow-form[data-workflow="browser-filters"]')
    assert user_page.locator("#id_image").count() == 1


def test_russian_ui_and_switching_to_english(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    user_factory("alice")
    upload_example("image-filters")

    page = new_context(stack.web_url, locale="ru-RU").new_page()
    page.goto("/login/")
    assert page.get_attribute("html", "lang") == "ru"
    assert page.inner_text("h1") == "Вход в comfyportal"
    assert page.inner_text("label[for=id_username]") == "Имя пользователя"
    assert page.inner_text("label[for=id_password]") == "Пароль"
    assert page.inner_text("#login-submit") == "Войти"
    shot(page, "12-login-ru")

    log_in(page, "alice")
    assert page.inner_text("main h1") == "Сценарии"
    assert page.inner_text("#nav-jobs") == "Мои задачи"
    assert page.inner_text("#nav-gallery") == "Галерея"
    assert "Доступен 1 сценарий." in page.inner_text("main")
    shot(page, "13-catalogue-ru")
    page.goto("/w/image-filters/")
    assert page.inner_text("#workflow-submit") == "Запустить"

    # The language switcher in the user menu.
    page.click("#user-menu summary")
    assert page.inner_text("label[for=language-select]") == "Язык"
    page.select_option("#language-select", "en")
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("#workflow-submit") == "Start"
    assert page.inner_text("#nav-jobs") == "My jobs"
    page.goto("/")  # the choice sticks although the browser still asks for Russian
    assert page.inner_text("main h1") == "Workflows"
    assert "1 workflow available." in page.inner_text("main")
