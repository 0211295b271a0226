"""A user in chromium: log in, fill a workflow's form, watch the job run live, get the picture.

Real daphne + qcluster + test ComfyUI node (tests/harness.py); the browser uses the pages, the
htmx forms and the /ws/jobs/ WebSocket exactly as a person would.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from jobs.models import Job, JobFile
from tests.browser.conftest import log_in, picture, png, publish, register_nodes, shot, submit_and_open_job
from tests.factories import upload_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_URL = re.compile(r".*/jobs/[0-9a-f-]{36}/$")

# Records every distinct (progress, aria-valuenow, status) of the job panel / job rows, from the first
# paint on, so a test can tell that the bar moved and not only where it ended.
PROGRESS_RECORDER = """
(() => {
  window.__progress = [];
  setInterval(() => {
    const row = document.querySelector('#job-panel, [data-job-row]');
    const bar = row && row.querySelector('progress[data-progress]');
    if (!row || !bar) return;
    const rec = [Number(bar.dataset.progress), Number(bar.getAttribute('aria-valuenow')), row.dataset.status,
                 location.pathname];
    const last = window.__progress[window.__progress.length - 1];
    if (!last || last.join('|') !== rec.join('|')) window.__progress.push(rec);
  }, 25);
})();
"""


def moved(records: list) -> bool:
    return any(0 < r[0] < 1 for r in records)


def test_submit_watch_progress_and_download_the_result(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 2, "cache_none": True})
    user_factory("alice")
    upload_example("image-filters")
    register_nodes(stack)

    context = new_context(stack.web_url, accept_downloads=True)
    context.add_init_script(PROGRESS_RECORDER)
    page = context.new_page()

    # Log in through the login page (an anonymous visit is sent there first).
    page.goto("/")
    assert "/login/" in page.url
    page.wait_for_selector("#login-form")
    shot(page, "01-login")
    log_in(page, "alice")
    page.wait_for_selector("#workflow-image-filters")
    shot(page, "02-catalogue")

    # The form: upload a picture, move a slider with the keyboard, type a number.
    page.click("#workflow-image-filters h3 a")
    page.wait_for_selector("#workflow-form")
    source = picture(240, 160)
    page.set_input_files("#id_image", {"name": "photo.png", "mimeType": "image/png", "buffer": png(source)})
    page.wait_for_function("() => document.getElementById('id_image-preview').naturalWidth === 240")
    page.focus("#id_blur_radius-range")
    page.keyboard.press("ArrowRight")
    assert page.input_value("#id_blur_radius") == "2"  # the range drives the number
    page.fill("#id_invert", "1")
    assert page.input_value("#id_invert-range") == "1"  # and the number drives the range
    shot(page, "03-form-image-filters")

    job_id = submit_and_open_job(page)
    page.wait_for_selector(f'#job-panel[data-job-id="{job_id}"]')
    page.wait_for_function("() => window.__progress.some(r => r[0] > 0 && r[0] < 1)", timeout=30_000)
    shot(page, "04-job-running")
    page.wait_for_selector('#job-panel[data-status="DONE"]', timeout=30_000)

    records = [r for r in page.evaluate("window.__progress") if JOB_URL.match(r[3])]
    running = [r for r in records if r[2] in ("QUEUED", "RUNNING")]
    # The bar moved while the page was open: from where it started (0, unless the machine is very
    # slow to open the page) to a value strictly between 0 and 1, pushed over the WebSocket.
    assert moved(records), records
    assert running[0][0] < max(r[0] for r in running if r[0] < 1), records
    assert [r[0] for r in running] == sorted(r[0] for r in running), records  # never backwards
    assert any(0 < r[1] < 100 for r in running), records  # aria-valuenow follows
    assert records[-1][2] == "DONE"
    assert page.locator("#job-panel .job-progress").is_hidden()
    assert page.inner_text('#job-panel [data-field="status"]') == "Done"
    assert float(page.inner_text('#job-inputs [data-input="invert"]')) == 1.0
    assert page.inner_text('#job-inputs [data-input="blur_radius"]') == "2"
    page.wait_for_function("() => document.querySelector('#job-outputs img').naturalWidth > 0")
    publish(shot(page, "05-job-done"), "job-result.png")
    assert Job.objects.get(pk=job_id).status == "DONE"

    # The gallery shows the result; the lightbox opens it large and downloads it.
    page.click("#nav-gallery")
    page.wait_for_selector("#gallery-grid")
    [file_id] = page.locator("#gallery-grid [data-file-id]").evaluate_all("els => els.map(e => e.dataset.fileId)")
    assert JobFile.objects.get(pk=file_id, kind="RESULT").job_id is not None
    page.wait_for_function("() => document.querySelector('#gallery-grid img').naturalWidth > 0")
    shot(page, "06-gallery")
    page.click(f'[data-file-id="{file_id}"] a[data-lightbox]')
    page.wait_for_selector("#lightbox[open]")
    page.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth === 240")
    shot(page, "07-lightbox", full_page=False)
    with page.expect_download() as info:
        page.click("#lightbox-download")
    download = info.value
    data = open(download.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    result = Image.open(io.BytesIO(data)).convert("RGB")
    assert result.size == (240, 160)
    # Invert amount 1 (typed into the form) gives a negative: the solid yellow disc turns blue.
    r, g, b = source.getpixel((48, 80))
    assert all(abs(a - e) <= 3 for a, e in zip(result.getpixel((48, 80)), (255 - r, 255 - g, 255 - b)))
    page.click("#lightbox-close")
    page.wait_for_selector("#lightbox", state="hidden")


def test_paint_a_mask_and_only_the_painted_area_changes(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"job_time": 3, "cache_none": True})
    user_factory("alice")
    user_factory("root", role="ADMIN")
    upload_example("mask-composite")
    register_nodes(stack)

    context = new_context(stack.web_url, accept_downloads=True)
    context.add_init_script(PROGRESS_RECORDER)
    page = context.new_page()
    log_in(page, "alice")
    page.goto("/w/mask-composite/")

    # A picture larger than the canvas on screen: the mask must still come out at full size.
    width, height = 1440, 960
    source = picture(width, height)
    page.set_input_files("#id_image", {"name": "street.png", "mimeType": "image/png", "buffer": png(source)})
    root = page.locator("#id_mask-canvas")
    page.wait_for_selector("#id_mask-canvas.mask-canvas--ready")
    canvas = root.locator("canvas.mask-canvas__mask")
    assert canvas.evaluate("c => [c.width, c.height]") == [width, height]
    canvas.evaluate("c => c.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    assert box["width"] < width * 0.9, box  # shown scaled down

    # One horizontal stroke with the mouse across the middle of the picture.
    y = box["y"] + box["height"] / 2
    x0, x1 = box["x"] + box["width"] * 0.35, box["x"] + box["width"] * 0.65
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=25)
    page.mouse.up()
    page.wait_for_function("() => document.getElementById('id_mask').files.length === 1")  # exported into the input
    size = page.evaluate("""async () => {
        const url = window.MaskCanvas.getMaskDataURL(document.getElementById('id_mask-canvas'));
        const img = new Image(); img.src = url; await img.decode();
        return [img.naturalWidth, img.naturalHeight];
    }""")
    assert size == [width, height]
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the picture
    publish(shot(page, "03b-form-mask"), "workflow-form.png")

    job_id = submit_and_open_job(page)

    # My jobs shows the same job running, with its bar moving.
    page.click("#nav-jobs")
    row = f'#job-list [data-job-row][data-job-id="{job_id}"]'
    page.wait_for_selector(row)
    page.wait_for_function(
        f"""() => {{ const b = document.querySelector('{row} progress[data-progress]');
                    return b && b.value > 0 && b.value < 1; }}""",
        timeout=30_000,
    )
    shot(page, "04b-my-jobs-running")
    page.wait_for_selector(f'{row}[data-status="DONE"]', timeout=30_000)
    page.wait_for_selector(f"{row} .job-row__outputs img")
    records = [r for r in page.evaluate("window.__progress") if r[3] == "/jobs/"]
    assert moved(records), records
    shot(page, "04c-my-jobs-done")

    # The mask was stored at the picture's full resolution.
    mask = JobFile.objects.get(job_id=job_id, kind="MASK")
    assert (mask.width, mask.height) == (width, height)

    page.click(f"{row} a.job-row__title")
    page.wait_for_selector('#job-panel[data-status="DONE"]')
    page.wait_for_function("() => document.querySelector('#job-outputs img').naturalWidth > 0")
    shot(page, "05b-job-mask-done")
    with page.expect_download() as info:
        page.click("#job-outputs a[download]")
    result = np.asarray(Image.open(info.value.path()).convert("RGB"), dtype=np.int16)
    original = np.asarray(source, dtype=np.int16)
    assert result.shape == original.shape

    # Inside the stroke the picture is blurred (its stripes are gone)…
    cy = height // 2
    band = np.s_[cy - 8 : cy + 8, int(width * 0.4) : int(width * 0.6)]
    inside = np.abs(result[band] - original[band])
    assert inside.max(axis=-1).mean() > 15, inside.mean()
    assert (inside.max(axis=-1) > 2).mean() > 0.9
    # …far from it nothing changed, to the bit.
    brush = 40 * width / box["width"]  # the brush is 40 screen pixels wide
    margin = int(brush) + 4
    for part in (np.s_[: cy - margin], np.s_[cy + margin :]):
        outside = np.abs(result[part] - original[part])
        assert outside.max() == 0, outside.max()
    left = np.abs(result[:, : int(width * 0.35) - margin] - original[:, : int(width * 0.35) - margin])
    right = np.abs(result[:, int(width * 0.65) + margin :] - original[:, int(width * 0.65) + margin :])
    assert left.max() == 0 and right.max() == 0

    # The admin dashboard (staff only) shows the node and the finished job.
    admin = new_context(stack.web_url).new_page()
    log_in(admin, "root")
    admin.goto("/admin-dashboard/")
    admin.wait_for_selector("#dashboard")
    assert admin.get_attribute('#dashboard-nodes tr[data-node="gpu1"]', "data-status") == "ONLINE"
    assert admin.inner_text('#jobs-by-status [data-status="DONE"] strong') == "1"
    shot(admin, "11-admin-dashboard")
    page.goto("/admin-dashboard/")  # not for a plain user
    assert page.locator("#dashboard").count() == 0
