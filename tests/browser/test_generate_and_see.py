"""A workflow's page in chromium: start, see the try's progress and results beside the form,
change a value and start again without leaving; run a job again with changes; use a result as
another workflow's input (a mask workflow included); the phone layout (results under the form)."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobFile
from tests.browser.conftest import log_in, picture, png, publish, register_nodes, shot, submit_and_see
from tests.factories import upload_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}

# Records the newest try's (progress, status) from the first paint on: the bar must move on this page.
TRY_RECORDER = """
(() => {
  window.__tries = [];
  setInterval(() => {
    const card = document.querySelector('#tries .try');
    const bar = card && card.querySelector('progress[data-progress]');
    if (!card || !bar) return;
    const rec = [card.dataset.jobId, Number(bar.dataset.progress), card.dataset.status];
    const last = window.__tries[window.__tries.length - 1];
    if (!last || last.join('|') !== rec.join('|')) window.__tries.push(rec);
  }, 25);
})();
"""


def wait_done_with_results(page, job_id: str) -> None:
    page.wait_for_selector(f'#try-{job_id}[data-status="DONE"]', timeout=60_000)
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('#try-{job_id} .try__outputs img'); return i && i.naturalWidth > 0; }}"
    )


def results_of(job_id: str) -> list[JobFile]:
    return list(JobFile.objects.filter(job_id=job_id, kind="RESULT"))


def test_submit_twice_and_see_both_results_without_leaving_the_form(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 2, "cache_none": True})
    user_factory("alice")
    upload_example("image-filters")
    register_nodes(stack)
    context = new_context(stack.web_url)
    context.add_init_script(TRY_RECORDER)
    page = context.new_page()
    log_in(page, "alice")
    page.goto("/w/image-filters/")
    page.wait_for_selector("#tries-empty")
    assert "Your results will appear here." in page.inner_text("#tries")
    page.evaluate("window.__samePage = true")  # gone if the browser loads another page

    page.set_input_files("#id_image", {"name": "photo.png", "mimeType": "image/png", "buffer": png(picture(240, 160))})
    page.fill("#id_blur_radius", "2")
    first = submit_and_see(page)
    assert page.locator("#tries-empty").count() == 0
    assert page.input_value("#id_blur_radius") == "2"  # the form keeps what was typed
    assert page.locator("#form-notice").is_visible()
    page.wait_for_function("() => document.getElementById('id_image-preview').naturalWidth === 240")  # and the picture
    page.wait_for_function("() => window.__tries.some(r => r[1] > 0 && r[1] < 1)", timeout=30_000)
    shot(page, "20a-generate-running", full_page=False)
    wait_done_with_results(page, first)
    records = [r for r in page.evaluate("window.__tries") if r[0] == first]
    assert any(0 < r[1] < 1 for r in records), records  # its bar moved, live, beside the form
    assert records[-1][2] == "DONE"

    # Change a value and start again, from the same page (Ctrl+Enter, staying in the field).
    page.fill("#id_invert", "1")
    second = submit_and_see(page, keys_in="#id_invert")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'id_invert'")
    wait_done_with_results(page, second)
    assert page.evaluate("window.__samePage") is True
    order = page.eval_on_selector_all("#tries .try", "els => els.map(e => e.dataset.jobId)")
    assert order == [second, first]  # the newest first, both shown with their results
    assert page.locator("#tries .try__outputs img").count() == 2
    assert Job.objects.get(pk=first).inputs["invert"] == 0 and Job.objects.get(pk=second).inputs["invert"] == 1
    assert results_of(first)[0].sha256 != results_of(second)[0].sha256
    # each try has its own copy of the picture
    first_picture = JobFile.objects.get(pk=Job.objects.get(pk=first).inputs["image"])
    second_picture = JobFile.objects.get(pk=Job.objects.get(pk=second).inputs["image"])
    assert first_picture.pk != second_picture.pk and first_picture.sha256 == second_picture.sha256
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    publish(shot(page, "20-generate-and-see"), "generate-and-see.png")

    # A result thumbnail leads to the job.
    with page.expect_navigation():
        page.click(f"#try-{first} .try__outputs a")
    assert page.url.rstrip("/").endswith(first)


def test_the_form_page_on_a_phone_shows_the_results_under_the_form(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 1, "cache_none": True})
    user_factory("alice")
    upload_example("image-filters")
    register_nodes(stack)
    page = new_context(stack.web_url, viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    log_in(page, "alice")
    page.goto("/w/image-filters/")
    page.set_input_files("#id_image", {"name": "photo.png", "mimeType": "image/png", "buffer": png(picture(240, 160))})
    job_id = submit_and_see(page)
    wait_done_with_results(page, job_id)
    form = page.locator("#workflow-form").bounding_box()
    results = page.locator("#tries").bounding_box()
    assert results["y"] >= form["y"] + form["height"], (form, results)  # under the form, not beside it
    assert results["x"] < 30 and results["width"] > 330, results  # the whole width
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    page.locator("#tries").scroll_into_view_if_needed()
    publish(shot(page, "21-generate-and-see-phone"), "generate-and-see-phone.png")


def test_run_again_with_changes_and_use_a_result_as_input(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 1, "cache_none": True})
    user_factory("alice")
    upload_example("image-filters")
    upload_example("mask-composite")
    register_nodes(stack)
    page = new_context(stack.web_url).new_page()
    log_in(page, "alice")
    page.goto("/w/image-filters/")
    page.set_input_files("#id_image", {"name": "photo.png", "mimeType": "image/png", "buffer": png(picture(320, 240))})
    page.fill("#id_blur_radius", "3")
    first = submit_and_see(page)
    wait_done_with_results(page, first)
    first_job = Job.objects.get(pk=first)

    # Run again with changes, from the job's page: the form comes filled, the picture included.
    page.goto(f"/jobs/{first}/")
    with page.expect_navigation():
        page.click('#job-panel [data-action="edit"]')
    assert f"again={first}" in page.url
    assert page.input_value("#id_blur_radius") == "3"
    page.wait_for_function("() => document.getElementById('id_image-preview').naturalWidth > 0")
    page.fill("#id_invert", "1")
    again = submit_and_see(page)
    wait_done_with_results(page, again)
    again_job = Job.objects.get(pk=again)
    assert again_job.inputs["blur_radius"] == 3 and again_job.inputs["invert"] == 1
    copied = JobFile.objects.get(pk=again_job.inputs["image"])
    assert copied.pk != first_job.inputs["image"] and copied.job_id == again_job.pk
    assert copied.sha256 == JobFile.objects.get(pk=first_job.inputs["image"]).sha256

    # Use as input: the gallery offers the workflows taking a picture.
    [result] = results_of(again)
    page.goto("/gallery/")
    page.click(f'#file-{result.pk} [data-action="use-as-input"] summary')
    menu = page.locator(f'#file-{result.pk} .use-as-input__menu a[data-workflow="image-filters"]')
    assert menu.is_visible()
    page.click("h1")  # a click elsewhere closes the menu
    menu.wait_for(state="hidden")
    # From the job's page, into the mask workflow: the painter gets the picture.
    page.goto(f"/jobs/{again}/")
    page.click('#job-outputs [data-action="use-as-input"] summary')
    with page.expect_navigation():
        page.click('#job-outputs .use-as-input__menu a[data-workflow="mask-composite"]')
    page.wait_for_selector("#id_mask-canvas.mask-canvas--ready")
    canvas = page.locator("#id_mask-canvas canvas.mask-canvas__mask")
    assert canvas.evaluate("c => [c.width, c.height]") == [320, 240]
    canvas.evaluate("c => c.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=15)
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('id_mask').files.length === 1")
    masked = submit_and_see(page)
    wait_done_with_results(page, masked)
    masked_job = Job.objects.get(pk=masked)
    picture_input = JobFile.objects.get(pk=masked_job.inputs["image"])
    assert picture_input.kind == "IMAGE" and picture_input.sha256 == result.sha256 and picture_input.pk != result.pk
    assert JobFile.objects.filter(job_id=masked, kind="MASK").exists()
    assert JobFile.objects.get(pk=result.pk).job_id == again_job.pk  # the result stays its job's
    mask = JobFile.objects.get(job_id=masked, kind="MASK")

    # Running the masked job again (from its try: the form beside fills in place) shows its mask
    # on the picture, and sends it unless changed.
    page.evaluate("window.__samePage = true")
    page.click(f'#try-{masked} [data-action="edit"]')
    page.wait_for_url(f"**again={masked}")
    page.wait_for_selector("#id_mask-canvas.mask-canvas--kept")
    assert page.evaluate("window.__samePage") is True
    painted = canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] >= 128) n++; return n; }"
    )
    assert 0 < painted < 320 * 240 / 2, painted  # the stroke, not the whole picture
    page.fill("#id_blur_radius", "4")
    kept = submit_and_see(page)
    wait_done_with_results(page, kept)
    kept_mask = JobFile.objects.get(job_id=kept, kind="MASK")
    assert kept_mask.pk != mask.pk and kept_mask.sha256 == mask.sha256  # the same mask, the new job's copy
    # Clearing it: the canvas is what counts, and the mask from before is not sent.
    page.wait_for_selector("#id_mask-canvas.mask-canvas--kept")  # the form after the start shows it again
    page.click("#id_mask-canvas button[data-action=clear]")
    page.wait_for_function("() => document.getElementById('id_mask-keep').value === ''")
