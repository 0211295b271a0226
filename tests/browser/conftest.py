"""Real-browser tests: Debian's chromium driven by Playwright (sync API) against a real stack.

The stack (tests/harness.py) runs daphne, qcluster workers and test ComfyUI nodes on the pytest-django
test database and Redis; the browser talks to daphne over HTTP and WebSocket like a user would.

Chromium is never downloaded by Playwright: the `browser` fixture uses /usr/bin/chromium and installs
Debian's package through apt when it is missing.

Pages run under the site's Content-Security-Policy (no eval): give `page.wait_for_function` a
function, `"() => …"`, not a bare expression, which Playwright re-evaluates in the page with eval.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.conftest import PASSWORD, make_user
from tests.harness import REPO, Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an asyncio loop in this thread, which makes Django's ORM refuse to
    run ("You cannot call this from an async context"). The tests only touch the ORM between browser
    calls, so that is safe here. Set per browser test only (autouse, so it is undone after the test
    database is flushed), never for the rest of the suite; the stack's processes do not inherit it
    (see BrowserStack.env)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class BrowserStack(Stack):
    """The harness's Stack, without job runners when it has no workers, and without the test-only
    DJANGO_ALLOW_ASYNC_UNSAFE flag in its processes' environment."""

    @property
    def env(self) -> dict:
        env = super().env
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        return env

    def start_runners(self, timeout: float = 40) -> None:
        if self.worker_count:
            super().start_runners(timeout)


@pytest.fixture
def stack_factory(transactional_db, tmp_path):
    stacks: list[BrowserStack] = []

    def start(**kwargs) -> BrowserStack:
        stack = BrowserStack(media_root=tmp_path / "media", **kwargs)
        stacks.append(stack)
        return stack.__enter__()

    yield start
    for stack in stacks:
        stack.__exit__(None, None, None)


def register_nodes(stack) -> list:
    from nodes.models import ComfyNode

    return [ComfyNode.objects.create(name=f"gpu{i + 1}", base_url=node.url) for i, node in enumerate(stack.nodes)]


# --- chromium ---------------------------------------------------------------------------------


def ensure_chromium() -> Path:
    """Debian's chromium, installed through apt when missing (never Playwright's own download)."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail("/usr/bin/chromium is missing and apt-get is not available to install it")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, apt, "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run([*sudo, apt, "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    if not CHROMIUM.exists():
        pytest.fail("apt-get installed chromium but /usr/bin/chromium is still missing")
    return CHROMIUM


AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"


def ensure_axe() -> Path:
    """axe-core at the version package.json pins, installed with `npm ci` (package-lock.json)
    into node_modules/ (gitignored) when missing. Without npm or the registry a developer's run
    skips the accessibility check; under CI=true it fails, so CI never passes without it."""
    if AXE.exists():
        return AXE
    give_up = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    npm = shutil.which("npm") or _apt_install_npm()
    if npm is None:
        give_up("axe-core is not installed and npm is missing (apt-get install npm, then npm ci)")
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0 or not AXE.exists():
        give_up(f"npm ci could not install axe-core:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return AXE


def _apt_install_npm() -> str | None:
    """Debian's npm, as ensure_chromium installs chromium; None when apt cannot."""
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, apt, "install", "-y", "--no-install-recommends", "npm"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run([*sudo, apt, "update"], env=env)
        subprocess.run(install, env=env)
    return shutil.which("npm")


@pytest.fixture(scope="package")
def browser():
    """One chromium for all browser tests. Package scope, not session: Playwright's sync API keeps
    its asyncio loop marked as running in this thread for as long as it lives, which would break the
    asyncio tests (and sync ORM calls) that pytest runs after tests/browser/."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def new_context(browser, request):
    """new_context(base_url, **options) -> a fresh BrowserContext; closed (and its pages saved as
    failure screenshots when the test failed) at the end of the test."""
    contexts = []

    def make(base_url: str, **options):
        options.setdefault("viewport", VIEWPORT)
        context = browser.new_context(base_url=base_url, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for n, context in enumerate(contexts):
        if failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for m, page in enumerate(context.pages):
                try:
                    page.screenshot(path=SCREENSHOTS / f"FAILED-{request.node.name}-{n}-{m}.png", full_page=True)
                except Exception:
                    pass
        context.close()


# --- helpers ----------------------------------------------------------------------------------


def shot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    return path


def publish(path: Path, name: str) -> None:
    """Copy a screenshot into docs/screenshots/ when UPDATE_DOC_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / name)


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("#login-submit")
    assert "/login/" not in page.url, page.inner_text("main")


def submit_and_see(page, *, keys_in: str = "") -> str:
    """Press the workflow form's Start (or Ctrl+Enter in the field `keys_in`) and wait for the
    new try at the top of "Your results" (the page stays); return its job id."""
    before = page.eval_on_selector_all("#tries .try", "els => els.map(e => e.dataset.jobId)")
    if keys_in:
        page.press(keys_in, "Control+Enter")
    else:
        page.click("#workflow-submit")
    page.wait_for_function(
        "(before) => { const t = document.querySelector('#tries .try'); return t && !before.includes(t.dataset.jobId); }",
        arg=before,
    )
    return page.get_attribute("#tries .try", "data-job-id")


def submit_and_open_job(page) -> str:
    """Start the workflow form's job, then open its page from its try; return its id."""
    job_id = submit_and_see(page)
    with page.expect_navigation():
        page.click(f"#try-{job_id} .try__when")
    return job_id


def picture(width: int, height: int) -> Image.Image:
    """A colourful test picture with fine stripes (so a blur visibly changes it)."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    stripe = np.where(((x // 6) + (y // 6)) % 2 == 1, 70, 0)
    rgb = np.stack([40 + 200 * x // width, 90 + 120 * y // height, 230 - 150 * x // width], axis=-1) - stripe[..., None]
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    r = min(width, height) // 5
    draw.ellipse((width // 5 - r, height // 2 - r, width // 5 + r, height // 2 + r), fill=(250, 200, 40))
    draw.rectangle((width * 3 // 5, height // 5, width * 4 // 5, height * 2 // 5), fill=(30, 30, 60))
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def user_factory(transactional_db):
    return make_user
