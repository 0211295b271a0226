"""The catalogue and the form generated from a workflow's UI schema."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.models import Job, JobFile
from tests.pages.conftest import png_bytes
from workflows.services import set_active

pytestmark = pytest.mark.django_db


def test_catalogue_lists_active_workflows_and_hides_inactive(alice_client, filters, txt2img):
    set_active(workflow=txt2img, is_active=False)
    html = alice_client.get(reverse("catalogue")).content.decode()
    assert 'data-workflow="image-filters"' in html and filters.name in html
    assert "sd15-txt2img" not in html
    assert reverse("workflow_form", args=["image-filters"]) in html
    assert 'data-category="tools"' in html


def test_catalogue_empty_state(alice_client):
    html = alice_client.get(reverse("catalogue")).content.decode()
    assert 'id="catalogue-empty"' in html


def test_catalogue_shows_the_example_image(alice_client, every_widget):
    every_widget.spec = {**every_widget.spec, "example_image": "/static/examples/x.png"}
    every_widget.save()
    assert 'src="/static/examples/x.png"' in alice_client.get(reverse("catalogue")).content.decode()


def test_unknown_or_inactive_workflow_form_is_404(alice_client, filters):
    assert alice_client.get(reverse("workflow_form", args=["nope"])).status_code == 404
    set_active(workflow=filters, is_active=False)
    assert alice_client.get(reverse("workflow_form", args=["image-filters"])).status_code == 404


def test_the_form_page_does_not_take_posts(alice_client, every_widget):
    response = alice_client.post(reverse("workflow_form", args=["every-widget"]), {"prompt": "p"})
    assert response.status_code == 405
    assert not Job.objects.exists()


def test_submitting_to_an_unknown_or_inactive_workflow_is_404(alice_client, tiny):
    assert alice_client.post(reverse("job_submit", args=["nope"]), {"width": "32"}).status_code == 404
    set_active(workflow=tiny, is_active=False)
    assert alice_client.post(reverse("job_submit", args=["tiny"]), {"width": "32"}).status_code == 404
    assert not Job.objects.exists()


def test_opening_the_submit_url_goes_back_to_the_form(alice_client, tiny):
    response = alice_client.get(reverse("job_submit", args=["tiny"]))
    assert response.status_code == 302 and response.url == reverse("workflow_form", args=["tiny"])


def test_form_renders_every_widget(alice_client, every_widget):
    response = alice_client.get(reverse("workflow_form", args=["every-widget"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="workflow-form"' in html and 'enctype="multipart/form-data"' in html
    submit_url = reverse("job_submit", args=["every-widget"])
    assert f'action="{submit_url}"' in html and f'hx-post="{submit_url}"' in html
    assert re.search(r'<textarea name="prompt" id="id_prompt"[^>]* required', html)
    assert re.search(r'<input type="text" name="title" id="id_title" value="hi"', html)
    assert re.search(r'<input type="number" name="width" id="id_width" value="64" min="8" max="512" step="8"', html)
    assert re.search(r'<input type="range" id="id_strength-range" value="0.5" min="0.0" max="1.0" step="0.05"', html)
    assert re.search(r'<input type="number" name="strength" id="id_strength" value="0.5"', html)
    assert re.search(r'<input type="checkbox" name="flip" id="id_flip" value="true" checked', html)
    assert re.search(r'<select name="mode" id="id_mode"', html) and '<option value="fast" selected>' in html
    assert re.search(r'<input type="number" name="seed" id="id_seed" value=""[^>]* disabled', html)
    assert re.search(r'name="seed__random"[^>]* checked', html)
    assert re.search(r'<input type="file" name="image" id="id_image" accept="image/\*"', html)
    assert "data-mask-canvas" in html and 'data-image-input="id_image" data-mask-input="id_mask"' in html
    assert "js/mask-canvas.js" in html and "css/mask-canvas.css" in html


def test_floats_are_not_localized_in_inputs(alice_client, every_widget):
    html = alice_client.get(reverse("workflow_form", args=["every-widget"]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'value="0.5"' in html and "0,5" not in html


def test_errors_are_shown_inline_and_values_kept(alice_client, every_widget):
    response = alice_client.post(
        reverse("job_submit", args=["every-widget"]),
        {"prompt": "", "title": "keep me", "width": "9999", "strength": "0.25", "mode": "fast"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-error-for="prompt"' in html and 'data-error-for="width"' in html
    assert "at most 512" in html
    assert 'value="keep me"' in html and 'value="0.25"' in html
    assert 'aria-invalid="true"' in html
    assert Job.objects.count() == 0


def test_htmx_submit_with_errors_returns_the_form_partial(alice_client, every_widget):
    response = alice_client.post(reverse("job_submit", args=["every-widget"]), {"prompt": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="workflow-form"') and "<html" not in html
    assert 'data-error-for="prompt"' in html


def test_valid_submit_creates_a_job_and_redirects(alice, alice_client, filters):
    image = SimpleUploadedFile("cat.png", png_bytes(), content_type="image/png")
    response = alice_client.post(
        reverse("job_submit", args=["image-filters"]),
        {
            "image": image,
            "blur_radius": "3",
            "blur_sigma": "1.5",
            "sharpen": "0",
            "sharpen_radius": "1",
            "invert": "0.5",
        },
    )
    job = Job.objects.get(user=alice)
    assert response.status_code == 302 and response.url == reverse("job_detail", args=[job.pk])
    assert job.inputs["blur_radius"] == 3 and job.inputs["invert"] == 0.5
    upload = JobFile.objects.get(pk=job.inputs["image"])
    assert upload.owner == alice and upload.job == job and upload.kind == "IMAGE"


def test_htmx_valid_submit_keeps_the_form_and_announces_the_job(alice, alice_client, tiny):
    response = alice_client.post(
        reverse("job_submit", args=["tiny"]), {"width": "32", "color": "1", "prefix": "x"}, HTTP_HX_REQUEST="true"
    )
    job = Job.objects.get(user=alice)
    assert "HX-Redirect" not in response.headers and str(job.pk) in response.headers["HX-Trigger"]
    assert response.content.decode().lstrip().startswith('<form id="workflow-form"')


def test_uploaded_image_is_kept_when_the_form_has_errors(alice, alice_client, filters):
    image = SimpleUploadedFile("cat.png", png_bytes(), content_type="image/png")
    url = reverse("job_submit", args=["image-filters"])
    response = alice_client.post(url, {"image": image, "blur_radius": "99"})
    assert response.status_code == 400
    upload = JobFile.objects.get(owner=alice, kind="IMAGE")
    html = response.content.decode()
    assert f'name="image__upload" value="{upload.pk}"' in html
    assert f"/api/files/{upload.pk}?variant=thumb" in html
    response = alice_client.post(url, {"image__upload": str(upload.pk), "blur_radius": "2"})
    assert response.status_code == 302
    assert Job.objects.get(user=alice).inputs["image"] == str(upload.pk)


def test_a_bad_upload_is_an_inline_error(alice_client, filters):
    bad = SimpleUploadedFile("cat.png", b"<svg></svg>", content_type="image/png")
    response = alice_client.post(reverse("job_submit", args=["image-filters"]), {"image": bad})
    assert response.status_code == 400
    assert 'data-error-for="image"' in response.content.decode()


def test_someone_elses_upload_id_is_refused(alice_client, bob, filters):
    from jobs.files import store_upload

    theirs = store_upload(owner=bob, data=png_bytes(), kind="IMAGE", filename="b.png")
    response = alice_client.post(reverse("job_submit", args=["image-filters"]), {"image__upload": str(theirs.pk)})
    assert response.status_code == 400
    assert 'data-error-for="image"' in response.content.decode()
    assert not Job.objects.exists()


def test_checkbox_and_random_seed(alice, alice_client, every_widget):
    response = alice_client.post(
        reverse("job_submit", args=["every-widget"]),
        {"prompt": "p", "width": "64", "strength": "0.5", "mode": "slow", "seed__random": "1"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(user=alice)
    assert job.inputs["flip"] is False and job.inputs["mode"] == "slow"
    assert isinstance(job.inputs["seed"], int) and job.inputs["seed"] >= 0


def test_fixed_seed_is_kept(alice, alice_client, every_widget):
    alice_client.post(reverse("job_submit", args=["every-widget"]), {"prompt": "p", "flip": "true", "seed": "1234"})
    job = Job.objects.get(user=alice)
    assert job.inputs["seed"] == 1234 and job.inputs["flip"] is True


def test_quota_is_shown_as_a_form_error(alice, alice_client, tiny):
    alice.max_queued_jobs = 0
    alice.save()
    response = alice_client.post(reverse("job_submit", args=["tiny"]), {"width": "32"})
    assert response.status_code == 429
    assert 'id="form-errors"' in response.content.decode() and "max_queued_jobs" in response.content.decode()
