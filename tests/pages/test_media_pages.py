"""Video, animations and sound on the pages: players on the job page and in the gallery, the
gallery's kind filter, and the form's video and sound fields (with their preview script)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.files import store_result
from jobs.models import Job, JobFile
from tests.factories import make_job, upload_example
from tests.jobs import media_samples as samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_job(alice, tiny):
    job = make_job(alice, tiny, status="DONE")
    files = {
        "video": store_result(job=job, data=samples.mp4(), source_ref="output/cp/v_00001_.mp4"),
        "animation": store_result(job=job, data=samples.animation("WEBP"), source_ref="output/cp/a_00001_.webp"),
        "audio": store_result(job=job, data=samples.sound(1.0), source_ref="output/cp/s_00001.flac"),
    }
    return job, files


def test_job_page_plays_each_kind(alice_client, media_job):
    job, files = media_job
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    video, animation, audio = files["video"], files["animation"], files["audio"]
    assert (
        f'<video class="media-player" controls preload="metadata" playsinline src="/api/files/{video.pk}" '
        f'poster="/api/files/{video.pk}?variant=thumb" width="64" height="48"'
    ) in html
    assert f'<img src="/api/files/{animation.pk}" alt="Result 1" loading="lazy" data-media="animation"' in html
    assert f'src="/api/files/{audio.pk}?variant=thumb" alt="Waveform"' in html
    assert f'<audio class="media-player" controls preload="metadata" src="/api/files/{audio.pk}"' in html
    assert "1 s" in html and "8 frames" in html and "44100 Hz" in html
    assert "style=" not in html and " onclick=" not in html  # CSP: no inline styles or handlers


def test_gallery_filters_by_kind(alice_client, media_job):
    _, files = media_job
    url = reverse("gallery")
    everything = alice_client.get(url).content.decode()
    assert all(f'id="file-{f.pk}"' in everything for f in files.values())
    sounds = alice_client.get(url, {"kind": "audio"}).content.decode()
    assert f'id="file-{files["audio"].pk}"' in sounds and f'id="file-{files["video"].pk}"' not in sounds
    assert '<option value="audio" selected>' in sounds
    videos = alice_client.get(url, {"kind": "video"}).content.decode()
    assert f'id="file-{files["video"].pk}"' in videos and f'id="file-{files["animation"].pk}"' in videos
    assert f'id="file-{files["audio"].pk}"' not in videos
    assert "No results of this kind." in alice_client.get(url, {"kind": "image"}).content.decode()
    assert f'id="file-{files["audio"].pk}"' in alice_client.get(url, {"kind": "bogus"}).content.decode()


def test_gallery_speaks_russian(alice, alice_client, media_job):
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get(reverse("gallery"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Вид" in html and "Звук" in html and "Видео" in html


def test_form_takes_video_with_a_preview(alice_client, db):
    upload_example("video-convert")
    html = alice_client.get(reverse("workflow_form", args=["video-convert"])).content.decode()
    assert 'accept="video/mp4,video/webm,video/quicktime,video/x-matroska,image/gif,image/png"' in html
    assert 'data-media-preview="id_video-preview"' in html and 'data-max-seconds="60.0"' in html
    assert '<video class="upload-preview upload-preview--video" id="id_video-preview"' in html
    assert "/static/js/media-preview.js" in html


def test_form_refuses_a_bad_video_and_keeps_nothing(alice_client, db):
    upload_example("video-convert")
    url = reverse("job_submit", args=["video-convert"])
    response = alice_client.post(url, {"video": SimpleUploadedFile("x.mp4", samples.png()), "fps": "12"})
    assert response.status_code == 400
    assert "still picture" in response.content.decode()
    assert JobFile.objects.count() == 0 and Job.objects.count() == 0


def test_form_checks_the_fields_own_limit_at_upload(alice_client, db):
    upload_example("video-convert")
    url = reverse("job_submit", args=["video-convert"])
    long_clip = SimpleUploadedFile("long.mp4", samples.mp4(count=8, fps=0.1))  # 80 s, the field allows 60
    response = alice_client.post(url, {"video": long_clip, "fps": "12"})
    assert response.status_code == 400 and "at most 60 s allowed" in response.content.decode()
    assert JobFile.objects.count() == 0


def test_form_starts_a_job_with_a_video_and_shows_it(alice_client, db):
    upload_example("video-convert")
    url = reverse("job_submit", args=["video-convert"])
    response = alice_client.post(url, {"video": SimpleUploadedFile("clip.mp4", samples.mp4()), "fps": "12"})
    assert response.status_code == 302
    job = Job.objects.get()
    record = JobFile.objects.get(pk=job.inputs["video"])
    assert record.kind == "VIDEO" and record.job_id == job.pk
    html = alice_client.get(response["Location"]).content.decode()
    assert (
        f'<video class="media-player media-player--input" controls preload="none" src="/api/files/{record.pk}"' in html
    )


def test_form_takes_audio(alice_client, db):
    upload_example("audio-to-flac")
    html = alice_client.get(reverse("workflow_form", args=["audio-to-flac"])).content.decode()
    assert 'accept="audio/*"' in html and '<audio class="upload-preview upload-preview--audio"' in html
    url = reverse("job_submit", args=["audio-to-flac"])
    response = alice_client.post(url, {"audio": SimpleUploadedFile("a.wav", samples.sound(1.0, "wav"))})
    assert response.status_code == 302
    assert JobFile.objects.get().kind == "AUDIO"
