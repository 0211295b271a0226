"""Video and sound in chromium: a video result and a sound result play on the job page (the media
element gets data, readyState ≥ 2, and seeks), a chosen sound plays before upload, and the gallery
shows both. Screenshots go to docs/screenshots/ with UPDATE_DOC_SCREENSHOTS=1."""

from __future__ import annotations

import re

import numpy as np
import pytest

from testcomfy import media as test_media
from tests.browser.conftest import log_in, picture, png, publish, register_nodes, shot, submit_and_open_job
from tests.factories import upload_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# Wait until the element has data, seek, and report where it landed (the promise settles on "seeked").
SEEK = """
async ([selector, to]) => {
  const el = document.querySelector(selector);
  if (el.readyState < 2) {
    await new Promise((ok, fail) => {
      el.addEventListener('loadeddata', ok, {once: true});
      el.addEventListener('error', () => fail(new Error('media error ' + (el.error && el.error.code))), {once: true});
      el.load();
    });
  }
  const ready = el.readyState;
  await new Promise(ok => { el.addEventListener('seeked', ok, {once: true}); el.currentTime = to; });
  return {ready, time: el.currentTime, duration: el.duration, width: el.videoWidth || 0};
}
"""


PLAY_TO_END = """
async ([selector, from]) => {
  const el = document.querySelector(selector);
  el.muted = true;
  el.currentTime = from;
  await new Promise(ok => { el.addEventListener('ended', ok, {once: true}); el.play(); });
  return {ended: el.ended, time: el.currentTime};
}
"""


def _run(page, slug: str, fill) -> None:
    page.goto(f"/w/{slug}/")
    page.wait_for_selector("#workflow-form")
    fill()
    submit_and_open_job(page)
    page.wait_for_selector('#job-panel[data-status="DONE"]', timeout=60_000)


def test_video_and_sound_results_play_and_seek(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=1, node_args={"cache_none": True})
    user_factory("alice")
    upload_example("frames-to-video")
    upload_example("audio-to-flac")
    register_nodes(stack)
    page = new_context(stack.web_url).new_page()
    log_in(page, "alice")

    # A video result: 24 frames at 8 per second, 3 s.
    def fill_video():
        page.set_input_files(
            "#id_image", {"name": "photo.png", "mimeType": "image/png", "buffer": png(picture(320, 240))}
        )
        page.fill("#id_frames", "24")
        page.fill("#id_fps", "8")

    _run(page, "frames-to-video", fill_video)
    video = page.evaluate(SEEK, ["#job-outputs video", 2.0])
    assert video["ready"] >= 2 and abs(video["time"] - 2.0) < 0.2, video
    assert abs(video["duration"] - 3.0) < 0.05 and video["width"] == 320, video
    assert "3 s" in page.inner_text("#job-outputs [data-media-facts]")
    # It plays through to the end (muted: headless chromium allows autoplay of muted media only).
    ended = page.evaluate(PLAY_TO_END, ["#job-outputs video", 2.5])
    assert ended["ended"] and ended["time"] >= 2.9, ended
    publish(shot(page, "20-job-video"), "job-video.png")

    # A sound: chosen in the form, it plays before upload; the result plays and seeks too.
    tone = test_media.tone(2.0, 44100, 330.0, channels=2)
    beats = np.abs(np.sin(np.linspace(0, 4 * np.pi, tone.shape[1], dtype=np.float32))) ** 2  # four swells
    wav = test_media.encode_audio(tone * beats, 44100, "wav")

    def fill_audio():
        page.set_input_files("#id_audio", {"name": "tone.wav", "mimeType": "audio/wav", "buffer": wav})
        page.wait_for_function("() => document.getElementById('id_audio-facts').textContent.includes('2')")
        preview = page.evaluate(SEEK, ["#id_audio-preview", 1.0])
        assert preview["ready"] >= 2 and abs(preview["duration"] - 2.0) < 0.05, preview
        shot(page, "21-form-audio-preview")

    _run(page, "audio-to-flac", fill_audio)
    sound = page.evaluate(SEEK, ["#job-outputs audio", 1.5])
    assert sound["ready"] >= 2 and abs(sound["time"] - 1.5) < 0.1 and abs(sound["duration"] - 2.0) < 0.05, sound
    page.wait_for_function("() => document.querySelector('#job-outputs img.waveform').naturalWidth === 640")
    publish(shot(page, "22-job-audio"), "job-audio.png")

    # The gallery shows both, and filters by kind.
    page.goto("/gallery/")
    page.wait_for_selector("#gallery-grid video")
    page.wait_for_function("() => document.querySelector('#gallery-grid img.waveform').naturalWidth === 640")
    page.evaluate(SEEK, ["#gallery-grid video", 0.5])
    publish(shot(page, "23-gallery-media"), "gallery-media.png")
    page.select_option("#gallery-kind", "audio")
    page.click("#gallery-filter button[type=submit]")
    page.wait_for_url(re.compile(r".*kind=audio.*"))
    assert page.locator("#gallery-grid [data-kind]").evaluate_all("els => els.map(e => e.dataset.kind)") == ["audio"]
