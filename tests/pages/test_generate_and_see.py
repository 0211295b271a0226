"""A workflow's page: the form with the user's tries beside it; submitting keeps the form;
"Run again with changes" and "Use as input" fill the form from an earlier job, only with the
user's own files."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from jobs.files import store_upload
from jobs.models import Job, JobFile
from tests.factories import make_job, upload_example
from tests.pages.conftest import png_bytes, result_file

pytestmark = pytest.mark.django_db

FILTER_VALUES = {"blur_radius": "3", "blur_sigma": "1.5", "sharpen": "0", "sharpen_radius": "1", "invert": "0.5"}


def form_url(slug: str, **query) -> str:
    url = reverse("workflow_form", args=[slug])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_page_says_where_results_will_appear_before_any_try(alice_client, filters):
    html = alice_client.get(form_url("image-filters")).content.decode()
    assert 'id="workflow-form"' in html and 'id="tries-empty"' in html
    assert "Your results will appear here." in html
    assert 'data-live-workflow="image-filters"' in html and "js/jobs-live.js" in html


def test_the_page_lists_my_last_tries_of_this_workflow_newest_first(alice, bob, alice_client, tiny, filters):
    older = make_job(alice, tiny, status="DONE")
    result_file(older)
    newer = make_job(alice, tiny, status="RUNNING", progress=0.5)
    other_workflow = make_job(alice, filters)
    theirs = make_job(bob, tiny)
    html = alice_client.get(form_url("tiny")).content.decode()
    assert html.index(f'id="try-{newer.pk}"') < html.index(f'id="try-{older.pk}"')
    assert str(other_workflow.pk) not in html and str(theirs.pk) not in html
    assert 'value="0.5" data-progress="0.5"' in html  # the running one's bar
    assert f"/api/files/{older.files.get().pk}" in html  # the finished one's result thumbnail
    assert 'id="tries-empty"' not in html


def test_only_the_last_few_tries_are_listed(alice, alice_client, tiny):
    jobs = [make_job(alice, tiny, status="DONE") for _ in range(8)]
    html = alice_client.get(form_url("tiny")).content.decode()
    assert html.count('class="try try--') == 6
    assert f'id="try-{jobs[-1].pk}"' in html and f'id="try-{jobs[0].pk}"' not in html


def test_a_running_try_can_be_cancelled_from_the_form_page(alice, alice_client, tiny):
    running = make_job(alice, tiny, status="RUNNING")
    done = make_job(alice, tiny, status="DONE")
    html = alice_client.get(form_url("tiny")).content.decode()
    cancel = reverse("job_cancel", args=[running.pk])
    assert f'hx-post="{cancel}" hx-swap="none"' in html
    assert reverse("job_cancel", args=[done.pk]) not in html
    alice_client.post(cancel, HTTP_HX_REQUEST="true")
    assert Job.objects.get(pk=running.pk).cancel_requested


def test_the_tries_partial_and_one_try_refresh(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="QUEUED")
    html = alice_client.get(form_url("tiny", partial="tries"), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="job-list"') and f'id="try-{job.pk}"' in html and "<html" not in html
    html = alice_client.get(
        reverse("job_detail", args=[job.pk]) + "?partial=try", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert html.lstrip().startswith(f'<li class="try try--queued" id="try-{job.pk}"')


def test_an_htmx_submit_keeps_the_form_and_reloads_the_tries(alice, alice_client, tiny):
    url = reverse("job_submit", args=["tiny"])
    response = alice_client.post(url, {"width": "48", "color": "1", "prefix": "cat"}, HTTP_HX_REQUEST="true")
    job = Job.objects.get(user=alice)
    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    assert json.loads(response.headers["HX-Trigger"]) == {"job-submitted": {"id": str(job.pk)}}
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="workflow-form"') and 'id="form-notice"' in html
    assert 'name="width" id="id_width" value="48"' in html and 'value="cat"' in html  # values kept
    # change a value and start again, without leaving
    alice_client.post(url, {"width": "64", "color": "1", "prefix": "cat"}, HTTP_HX_REQUEST="true")
    assert sorted(Job.objects.filter(user=alice).values_list("inputs__width", flat=True)) == [48, 64]


def test_a_second_try_with_the_same_picture_gets_its_own_copy(alice, alice_client, filters):
    url = reverse("job_submit", args=["image-filters"])
    image = SimpleUploadedFile("cat.png", png_bytes(), content_type="image/png")
    response = alice_client.post(url, {"image": image, **FILTER_VALUES}, HTTP_HX_REQUEST="true")
    first = Job.objects.get(user=alice)
    upload = JobFile.objects.get(pk=first.inputs["image"])
    assert upload.job == first
    assert f'name="image__upload" value="{upload.pk}"' in response.content.decode()  # still shown
    alice_client.post(url, {"image__upload": str(upload.pk), **FILTER_VALUES}, HTTP_HX_REQUEST="true")
    second = Job.objects.exclude(pk=first.pk).get()
    copy = JobFile.objects.get(pk=second.inputs["image"])
    assert copy.pk != upload.pk and copy.job == second and copy.kind == "IMAGE" and copy.sha256 == upload.sha256
    first.delete()  # deleting the first try does not take the second one's picture
    assert JobFile.objects.filter(pk=copy.pk).exists()


def test_run_again_with_changes_fills_the_form_with_the_jobs_inputs(alice, alice_client, filters):
    upload = store_upload(owner=alice, data=png_bytes(), kind="IMAGE", filename="cat.png")
    inputs = {
        "image": str(upload.pk),
        "blur_radius": 7,
        "blur_sigma": 2.5,
        "sharpen": 0,
        "sharpen_radius": 1,
        "invert": 0.25,
    }
    job = make_job(alice, filters, status="DONE", inputs=inputs)
    upload.job = job
    upload.save()
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert f'href="{form_url("image-filters", again=job.pk)}"' in html
    html = alice_client.get(form_url("image-filters", again=job.pk)).content.decode()
    assert 'name="blur_radius" id="id_blur_radius" value="7"' in html
    assert 'name="invert" id="id_invert" value="0.25"' in html
    assert f'name="image__upload" value="{upload.pk}"' in html and f"/api/files/{upload.pk}?variant=thumb" in html
    # the image input is not required any more: the picture is kept
    assert 'name="image" id="id_image" accept="image/*" required' not in html


def test_run_again_from_a_try_fills_the_form_beside_in_place(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE", inputs={"width": 40, "color": 2, "prefix": "dog"})
    page = alice_client.get(form_url("tiny")).content.decode()
    assert f'hx-get="{form_url("tiny", again=job.pk)}" hx-target="#workflow-form"' in page
    html = alice_client.get(form_url("tiny", again=job.pk), HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<form id="workflow-form"') and 'id="tries' not in html
    assert 'name="width" id="id_width" value="40"' in html and 'value="dog"' in html


def test_run_again_with_changes_of_someone_elses_job_is_404(alice_client, bob, filters):
    job = make_job(bob, filters, status="DONE")
    assert alice_client.get(form_url("image-filters", again=job.pk)).status_code == 404
    assert alice_client.get(form_url("image-filters", again="not-a-uuid")).status_code == 404


def test_an_admin_running_someones_job_again_gets_the_settings_not_the_pictures(admin_client_, bob, filters):
    upload = store_upload(owner=bob, data=png_bytes(), kind="IMAGE", filename="b.png")
    job = make_job(bob, filters, status="DONE", inputs={"image": str(upload.pk), "blur_radius": 5})
    html = admin_client_.get(form_url("image-filters", again=job.pk)).content.decode()
    assert 'name="blur_radius" id="id_blur_radius" value="5"' in html and str(upload.pk) not in html


def test_use_as_input_lists_the_workflows_taking_a_picture(alice, alice_client, tiny, filters):
    upload_example("sd15-inpaint")
    job = make_job(alice, tiny, status="DONE")
    result = result_file(job)
    for page in (reverse("job_detail", args=[job.pk]), reverse("gallery")):
        html = alice_client.get(page).content.decode()
        assert 'data-action="use-as-input"' in html
        assert f'href="{form_url("image-filters", input=result.pk)}"' in html
        assert f'href="{form_url("sd15-inpaint", input=result.pk)}"' in html
        assert f'href="{form_url("tiny", input=result.pk)}"' not in html  # tiny takes no picture


def test_use_as_input_fills_the_image_field_and_submitting_copies_the_result(alice, alice_client, tiny, filters):
    job = make_job(alice, tiny, status="DONE")
    result = result_file(job)
    html = alice_client.get(form_url("image-filters", input=result.pk)).content.decode()
    assert f'name="image__upload" value="{result.pk}"' in html
    assert (
        f'id="id_image-preview" alt="Preview of the chosen image"\n           src="/api/files/{result.pk}?variant=thumb"'
        in html
    )
    response = alice_client.post(
        reverse("job_submit", args=["image-filters"]), {"image__upload": str(result.pk), **FILTER_VALUES}
    )
    new = Job.objects.get(workflow=filters)
    assert response.status_code == 302
    picture = JobFile.objects.get(pk=new.inputs["image"])
    # the new job's own picture, an input (never shown as a result of it in the gallery)
    assert picture.pk != result.pk and picture.kind == "IMAGE" and picture.job == new
    assert JobFile.objects.get(pk=result.pk).job == job


def test_use_as_input_in_a_mask_workflow_gives_the_painter_the_picture(alice, alice_client, tiny):
    upload_example("sd15-inpaint")
    result = result_file(make_job(alice, tiny, status="DONE"))
    html = alice_client.get(form_url("sd15-inpaint", input=result.pk)).content.decode()
    assert f'data-image-url="/api/files/{result.pk}"' in html


def test_use_as_input_refuses_someone_elses_picture(alice_client, bob, tiny, filters):
    theirs = result_file(make_job(bob, tiny, status="DONE"))
    assert alice_client.get(form_url("image-filters", input=theirs.pk)).status_code == 404
    # and posting its id in the form is a field error, no job, no copy
    response = alice_client.post(
        reverse("job_submit", args=["image-filters"]), {"image__upload": str(theirs.pk), **FILTER_VALUES}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-error-for="image"' in html and "This file is not among yours" in html
    assert not Job.objects.filter(workflow=filters).exists() and JobFile.objects.count() == 1


def test_use_as_input_needs_a_picture_and_a_workflow_taking_one(alice, alice_client, tiny, filters):
    result = result_file(make_job(alice, tiny, status="DONE"))
    assert alice_client.get(form_url("tiny", input=result.pk)).status_code == 404
    assert alice_client.get(form_url("image-filters", input="nope")).status_code == 404


def test_the_page_in_russian(alice, alice_client, tiny):
    make_job(alice, tiny, status="DONE")
    html = alice_client.get(form_url("tiny"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Ваши результаты" in html and "Повторить с изменениями" in html and "Все мои задания" in html
    assert "Your results" not in html and "Run again with changes" not in html
    response = alice_client.post(
        reverse("job_submit", args=["tiny"]), {"width": "32"}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert "Запущено: ход работы и результаты появятся" in response.content.decode()
