"""Pictures: each catalogue card's example picture (an admin's upload or the spec's, else the
newest shared result, else a neutral picture of its category), sharing a job's results (its
owner only), and the name a result downloads under."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.serving import content_disposition
from tests.factories import TINY_GRAPH, make_job, tiny_spec
from tests.pages.conftest import png_bytes, result_file
from workflows.models import Workflow
from workflows.pictures import category_picture

pytestmark = pytest.mark.django_db


def card_picture(html: str, slug: str) -> tuple[str, str]:
    """(source, src) of the picture on `slug`'s card."""
    card = re.search(rf'<li class="card workflow-card" data-workflow="{slug}".*?</li>', html, re.S).group(0)
    img = re.search(r'<img class="workflow-card__example[^"]*" src="([^"]*)"[^>]*data-picture="(\w+)"', card)
    return img.group(2), img.group(1).replace("&amp;", "&")


def workflow(slug: str, category: str = "tools", **fields) -> Workflow:
    spec = {**tiny_spec(slug), **fields.pop("spec", {})}
    return Workflow.objects.create(
        slug=slug, name=slug.title(), version=fields.pop("version", "1.0.0"), category=category,
        graph=TINY_GRAPH, spec=spec, class_types=["EmptyImage", "ImageInvert", "SaveImage"], **fields,
    )  # fmt: skip


def shared_job(user, wf, *, share=True, color=(10, 200, 10), size=(64, 48)):
    job = make_job(user, wf, status="DONE", finished_at=timezone.now(), shareable=share)
    from jobs.files import store_result

    return job, store_result(job=job, data=png_bytes(size=size, color=color), source_ref="out.png")


def test_a_card_without_any_picture_shows_its_categorys_neutral_picture(alice_client):
    workflow("t2i", category="txt2img")
    workflow("misc", category="whatever")
    html = alice_client.get(reverse("catalogue")).content.decode()
    assert card_picture(html, "t2i") == ("category", "/static/img/categories/txt2img.svg")
    assert card_picture(html, "misc") == ("category", "/static/img/categories/default.svg")
    for name in ("txt2img", "img2img", "inpaint", "upscale", "video", "audio", "default"):
        assert finders.find(f"img/categories/{name}.svg"), name


def test_category_pictures_match_words_of_free_text_categories():
    assert category_picture("Video generation") == "video"
    assert category_picture("inpaint") == "inpaint"
    assert category_picture("image/upscaling") == "upscale"
    assert category_picture("") == "default"


def test_a_card_shows_the_newest_result_its_owner_shared(alice, bob, alice_client, bob_client):
    wf = workflow("t2i", category="txt2img")
    old, _ = shared_job(bob, wf)
    _, newest = shared_job(bob, wf, color=(1, 2, 3))
    shared_job(bob, wf, share=False)  # newer, but not shared
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timezone.timedelta(hours=1))
    source, src = card_picture(alice_client.get(reverse("catalogue")).content.decode(), "t2i")
    assert (source, src) == ("shared", f"/api/files/{newest.pk}?variant=thumb")
    # alice may read bob's shared result, whole or as its thumbnail; not his other files
    assert alice_client.get(src).status_code == 200
    assert alice_client.get(f"/api/files/{newest.pk}").status_code == 200
    unshared = bob.files.exclude(job__shareable=True).get()
    assert alice_client.get(f"/api/files/{unshared.pk}").status_code == 404
    # … and never delete it
    assert alice_client.delete(f"/api/files/{newest.pk}").status_code == 404
    assert alice_client.post(reverse("file_delete", args=[newest.pk])).status_code == 404


def test_a_shared_result_of_a_job_that_did_not_finish_is_not_shown(alice, bob, alice_client):
    wf = workflow("t2i", category="txt2img")
    job, record = shared_job(bob, wf)
    Job.objects.filter(pk=job.pk).update(status="ERROR")
    assert card_picture(alice_client.get(reverse("catalogue")).content.decode(), "t2i")[0] == "category"
    assert alice_client.get(f"/api/files/{record.pk}").status_code == 404


def test_the_specs_example_image_comes_before_a_shared_result(bob, alice_client):
    wf = workflow("t2i", category="txt2img", spec={"example_image": "/static/examples/x.png"})
    shared_job(bob, wf)
    assert card_picture(alice_client.get(reverse("catalogue")).content.decode(), "t2i") == (
        "spec",
        "/static/examples/x.png",
    )


def test_an_admins_upload_comes_first_and_later_versions_keep_it(bob, alice_client):
    wf = workflow("t2i", category="txt2img", spec={"example_image": "/static/examples/x.png"})
    shared_job(bob, wf)
    wf.example_picture.save("t2i.png", ContentFile(png_bytes(size=(80, 50), color=(9, 9, 9))))
    workflow("t2i", category="txt2img", version="2.0.0")  # the catalogue shows 2.0.0 now
    source, src = card_picture(alice_client.get(reverse("catalogue")).content.decode(), "t2i")
    assert source == "upload" and src.startswith(reverse("workflow_example", args=["t2i"]) + "?v=")
    response = alice_client.get(src)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    Workflow.objects.filter(slug="t2i").update(is_active=False)
    assert alice_client.get(src).status_code == 404


def test_the_example_picture_needs_a_signed_in_user(client):
    wf = workflow("t2i")
    wf.example_picture.save("t2i.png", ContentFile(png_bytes()))
    assert client.get(reverse("workflow_example", args=["t2i"])).status_code == 302


def test_the_catalogue_reads_all_its_pictures_in_a_constant_number_of_queries(bob, alice_client):
    alice_client.get(reverse("catalogue"))  # the session's first read

    def queries_with(count: int) -> int:
        for i in range(count):
            wf = workflow(f"wf-{count}-{i}", category="txt2img")
            shared_job(bob, wf)
        with CaptureQueriesContext(connection) as queries:
            html = alice_client.get(reverse("catalogue")).content.decode()
        assert html.count('data-picture="shared"') == Workflow.objects.count()
        return [q["sql"] for q in queries]

    few = queries_with(2)
    many = queries_with(8)
    assert len(many) == len(few), "\n".join(many)
    assert len(few) <= 10, "\n".join(few)


def test_admin_uploads_an_example_picture_checked_by_pillow(admin_client_, alice_client):
    wf = workflow("t2i")
    url = reverse("admin:workflows_workflow_change", args=[wf.pk])
    data = {"name": "T2I", "category": "txt2img", "description": "", "is_active": "on"}
    not_a_picture = SimpleUploadedFile("x.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png")
    response = admin_client_.post(url, {**data, "example_picture": not_a_picture})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    wf.refresh_from_db()
    assert not wf.example_picture
    picture = SimpleUploadedFile("x.png", png_bytes(size=(90, 60)), "image/png")
    response = admin_client_.post(url, {**data, "example_picture": picture})
    assert response.status_code == 302, response.content.decode()[:2000]
    wf.refresh_from_db()
    assert wf.example_picture.name.startswith("examples/")
    assert card_picture(alice_client.get(reverse("catalogue")).content.decode(), "t2i")[0] == "upload"


def test_only_the_owner_shares_a_jobs_results(alice, alice_client, bob_client, admin_client_, tiny):
    job = make_job(alice, tiny, status="DONE")
    result_file(job)
    url = reverse("job_share", args=[job.pk])
    assert bob_client.post(url, {"shareable": "1"}).status_code == 404
    assert admin_client_.post(url, {"shareable": "1"}).status_code == 404  # an admin sees, never shares
    job.refresh_from_db()
    assert job.shareable is False
    html = alice_client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'id="job-share" data-shareable="0"' in html
    assert 'id="job-share"' not in admin_client_.get(reverse("job_detail", args=[job.pk])).content.decode()
    response = alice_client.post(url, {"shareable": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-shareable="1"' in response.content.decode()
    job.refresh_from_db()
    assert job.shareable is True
    alice_client.post(url, {"shareable": "0"})
    job.refresh_from_db()
    assert job.shareable is False


def test_a_result_downloads_as_workflow_job_and_number(alice, alice_client, tiny):
    job = make_job(alice, tiny, status="DONE")
    first = result_file(job, ref="a.png")
    second = result_file(job, ref="b.png", color=(1, 1, 1))
    short = str(job.pk)[:8]
    response = alice_client.get(f"/api/files/{second.pk}?download=true")
    assert response["Content-Disposition"] == f'attachment; filename="tiny-{short}-2.png"'
    response = alice_client.get(f"/api/files/{first.pk}")
    assert response["Content-Disposition"] == f'inline; filename="tiny-{short}-1.png"'


def test_a_download_name_outside_ascii_is_also_given_in_utf8():
    assert content_disposition("ёж.png", download=True) == (
        "attachment; filename=\"__.png\"; filename*=UTF-8''%D1%91%D0%B6.png"
    )
    assert content_disposition('a"b.png') == "inline; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png"


def test_the_gallery_pages_by_cursor_older_and_back_newer(alice, alice_client, tiny, monkeypatch):
    monkeypatch.setattr("jobs.views.FILES_PER_PAGE", 3)
    records = []
    for i in range(7):
        job = make_job(alice, tiny, status="DONE")
        records.append(result_file(job, color=(i, i, i)))
    # the same second for some of them: the id breaks the tie, nothing is shown twice or skipped
    from jobs.models import JobFile

    stamp = timezone.now()
    for i, record in enumerate(records):
        JobFile.objects.filter(pk=record.pk).update(created_at=stamp - timezone.timedelta(seconds=i // 2))
    newest_first = list(JobFile.objects.filter(pk__in=[r.pk for r in records]).order_by("-created_at", "-pk"))

    def shown(html):
        return re.findall(r'id="file-([0-9a-f-]{36})"', html)

    def link(html, rel):
        found = re.search(rf'href="(\?[^"]*)" rel="{rel}"', html)
        return found and found.group(1).replace("&amp;", "&")

    url = reverse("gallery")
    pages, html = [], alice_client.get(url).content.decode()
    assert link(html, "prev") is None
    while True:
        pages.append(shown(html))
        older = link(html, "next")
        if not older:
            break
        html = alice_client.get(url + older).content.decode()
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == [str(r.pk) for r in newest_first]
    html = alice_client.get(url + link(html, "prev")).content.decode()
    assert shown(html) == pages[1]
    # nothing newer than the newest (it was deleted meanwhile, say): the first page
    from core.pagination import cursor_of

    assert shown(alice_client.get(url + f"?after={cursor_of(newest_first[0])}").content.decode()) == pages[0]
    # a cursor that is not one shows the first page, never a 500
    assert shown(alice_client.get(url + "?before=nonsense_x").content.decode()) == pages[0]


@pytest.mark.parametrize("page", ["gallery", "my_jobs"])
def test_a_history_page_reads_a_constant_number_of_queries(alice, alice_client, tiny, page):
    alice_client.get(reverse(page))  # the session's first read

    def queries_with(count: int) -> list[str]:
        for _ in range(count):
            result_file(make_job(alice, tiny, status="DONE", finished_at=timezone.now()))
        with CaptureQueriesContext(connection) as queries:
            assert alice_client.get(reverse(page)).status_code == 200
        return [q["sql"] for q in queries]

    few, many = queries_with(2), queries_with(12)
    assert len(many) == len(few), "\n".join(many)


def test_the_share_toggle_and_the_gallery_pager_speak_russian(alice, alice_client, tiny, monkeypatch):
    monkeypatch.setattr("jobs.views.FILES_PER_PAGE", 1)
    job = make_job(alice, tiny, status="DONE")
    result_file(job)
    result_file(make_job(alice, tiny, status="DONE"))
    html = alice_client.get(reverse("job_detail", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Показать как пример сценария" in html
    html = alice_client.get(reverse("gallery"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'rel="next">Старше<' in html


def test_the_api_shares_a_job_for_its_owner_only(alice, bob, admin_user, tiny):
    from tests.conftest import Api, token_for

    job = make_job(alice, tiny, status="DONE")
    for other in (bob, admin_user):
        response = Api(token_for(other)).patch(f"/api/jobs/{job.pk}", {"shareable": True})
        assert response.status_code == 404
    owner = Api(token_for(alice))
    response = owner.patch(f"/api/jobs/{job.pk}", {"shareable": True})
    assert response.status_code == 200 and response.json()["shareable"] is True
    assert owner.get(f"/api/jobs/{job.pk}").json()["shareable"] is True
    response = owner.patch(f"/api/jobs/{job.pk}", {"shareable": "maybe"})
    assert response.status_code == 422 and "shareable" in response.text
    assert owner.patch(f"/api/jobs/{job.pk}", {"shareable": 0}).status_code == 422
