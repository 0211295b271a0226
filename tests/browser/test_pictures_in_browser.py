"""Pictures in chromium: a wide result is shown whole (its box keeps the 4:1 aspect) on the job
page and in the gallery, opens full size in the lightbox and downloads as
`<workflow>-<job>-<n>.png`; the owner shares it and another user's catalogue card shows it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from jobs.files import store_result
from tests.browser.conftest import log_in, picture, png, publish, shot
from tests.factories import TINY_GRAPH, make_job, tiny_spec
from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOX_RATIO = "sel => { const r = document.querySelector(sel).getBoundingClientRect(); return r.width / r.height; }"


def loaded(page, selector: str) -> None:
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )


def test_a_wide_result_is_shown_whole_opens_full_size_and_is_shared(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    alice = user_factory("alice")
    user_factory("bob")
    spec = {**tiny_spec("tiny"), "name": "Wide picture", "category": "txt2img", "description": "A wide picture."}
    noisy_spec = {**tiny_spec("noisy"), "name": "Noisy clip", "category": "video", "description": "A short clip."}
    tiny = Workflow.objects.create(
        slug="tiny", name="Wide picture", version="1.0.0", category="txt2img", graph=TINY_GRAPH, spec=spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
    )  # fmt: skip
    Workflow.objects.create(
        slug="noisy", name="Noisy clip", version="1.0.0", category="video", graph=TINY_GRAPH, spec=noisy_spec,
        class_types=["EmptyImage", "ImageInvert", "SaveImage"],
    )  # fmt: skip
    job = make_job(alice, tiny, status="DONE", finished_at=timezone.now())
    wide = store_result(job=job, data=png(picture(1024, 256)), source_ref="out_1.png")
    tall = store_result(job=job, data=png(picture(256, 1024)), source_ref="out_2.png")

    context = new_context(stack.web_url, accept_downloads=True)
    page = context.new_page()
    log_in(page, "alice")

    # The job page: each result in its own shape, not a square.
    page.goto(f"/jobs/{job.pk}/")
    wide_img, tall_img = f'[data-file-id="{wide.pk}"] img', f'[data-file-id="{tall.pk}"] img'
    loaded(page, wide_img)
    loaded(page, tall_img)
    assert page.evaluate(BOX_RATIO, wide_img) == pytest.approx(4.0, rel=0.03)
    assert page.evaluate(BOX_RATIO, tall_img) == pytest.approx(0.25, rel=0.03)
    shot(page, "pictures-job-page")

    # The gallery: the same, and a click opens the whole file, which downloads with a sensible name.
    page.goto("/gallery/")
    loaded(page, f"#gallery-grid {wide_img}")
    assert page.evaluate(BOX_RATIO, f"#gallery-grid {wide_img}") == pytest.approx(4.0, rel=0.03)
    assert page.evaluate(BOX_RATIO, f"#gallery-grid {tall_img}") == pytest.approx(0.25, rel=0.03)
    assert page.get_attribute(f"#gallery-grid {wide_img}", "loading") == "lazy"
    shot(page, "pictures-gallery")
    page.click(f'#gallery-grid [data-file-id="{wide.pk}"] a[data-lightbox]')
    page.wait_for_selector("#lightbox[open]")
    page.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth === 1024")
    assert page.evaluate(BOX_RATIO, "#lightbox-image") == pytest.approx(4.0, rel=0.03)
    with page.expect_download() as info:
        page.click("#lightbox-download")
    assert info.value.suggested_filename == f"tiny-{str(job.pk)[:8]}-1.png"
    page.click("#lightbox-close")

    # The owner shares the job; bob's catalogue shows it on the workflow's card, the other
    # workflow's card its category's picture.
    page.goto(f"/jobs/{job.pk}/")
    page.click("#job-share button")
    page.wait_for_selector('#job-share[data-shareable="1"]')
    bob = new_context(stack.web_url).new_page()
    log_in(bob, "bob")
    bob.goto("/")
    shared = '[data-workflow="tiny"] img[data-picture="shared"]'
    neutral = '[data-workflow="noisy"] img[data-picture="category"]'
    loaded(bob, shared)
    loaded(bob, neutral)
    assert "/static/img/categories/video.svg" in bob.get_attribute(neutral, "src")
    publish(shot(bob, "pictures-catalogue"), "catalogue.png")
