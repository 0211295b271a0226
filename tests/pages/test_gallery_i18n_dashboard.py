"""The gallery, Russian pages, the user menu and the admin dashboard."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from jobs.models import JobFile
from tests.factories import make_job, make_node
from tests.pages.conftest import result_file

pytestmark = pytest.mark.django_db


def test_gallery_empty_state(alice_client):
    html = alice_client.get(reverse("gallery")).content.decode()
    assert 'id="gallery-empty"' in html


def test_gallery_shows_my_results_and_filters_by_workflow(alice, bob, alice_client, tiny, every_widget):
    a = result_file(make_job(alice, tiny, status="DONE"))
    b = result_file(make_job(alice, every_widget, status="DONE"), color=(1, 2, 3))
    theirs = result_file(make_job(bob, tiny, status="DONE"), color=(9, 9, 9))
    html = alice_client.get(reverse("gallery")).content.decode()
    assert f'data-file-id="{a.pk}"' in html and f'data-file-id="{b.pk}"' in html
    assert str(theirs.pk) not in html
    html = alice_client.get(reverse("gallery"), {"workflow": "tiny"}).content.decode()
    assert f'data-file-id="{a.pk}"' in html and f'data-file-id="{b.pk}"' not in html
    html = alice_client.get(reverse("gallery"), {"workflow": "nope"}).content.decode()
    assert 'id="gallery-empty"' in html


def test_delete_a_file(alice, bob_client, alice_client, tiny):
    record = result_file(make_job(alice, tiny, status="DONE"))
    assert bob_client.post(reverse("file_delete", args=[record.pk])).status_code == 404
    response = alice_client.post(reverse("file_delete", args=[record.pk]), {"next": "/gallery/?workflow=tiny"})
    assert response.status_code == 302 and response.url == "/gallery/?workflow=tiny"
    assert not JobFile.objects.filter(pk=record.pk).exists()


def test_delete_a_file_with_htmx_removes_the_tile(alice, alice_client, tiny):
    record = result_file(make_job(alice, tiny, status="DONE"))
    response = alice_client.post(reverse("file_delete", args=[record.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""


def test_user_menu_shows_limits_and_usage(alice, alice_client, tiny):
    alice.daily_job_limit = 7
    alice.save()
    make_job(alice, tiny)
    html = alice_client.get(reverse("catalogue")).content.decode()
    assert 'data-usage="jobs_today">1 / 7<' in html
    assert 'id="language-form"' in html and 'id="logout-form"' in html


def test_pages_in_russian(alice, alice_client, tiny):
    make_job(alice, tiny)
    html = alice_client.get(reverse("my_jobs"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'lang="ru"' in html
    assert "Мои задачи" in html and "В очереди" in html
    assert "Выйти" in html
    html = Client().get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Войти" in html


def test_language_switch_sets_the_cookie(alice_client):
    response = alice_client.post(reverse("set_language"), {"language": "ru", "next": "/"})
    assert response.status_code == 302
    html = alice_client.get(reverse("catalogue")).content.decode()
    assert "Сценарии" in html and "Мои задачи" in html


def test_dashboard_is_for_staff_only(alice_client, admin_client_, alice, tiny):
    assert alice_client.get(reverse("admin_dashboard")).status_code == 302
    assert Client().get(reverse("admin_dashboard")).status_code == 302
    make_node("gpu-1", system_stats={"devices": [{"vram_free": 2 * 1024**3, "vram_total": 8 * 1024**3}]})
    make_job(alice, tiny, status="ERROR")
    response = admin_client_.get(reverse("admin_dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-node="gpu-1"' in html and "<svg" in html and 'id="chart-errors"' in html


def test_offline_nodes_show_no_live_figures(admin_client_):
    stale = {"devices": [{"vram_free": 2 * 1024**3, "vram_total": 8 * 1024**3}]}
    make_node("gpu-on", system_stats=stale, queue_remaining=7)
    make_node("gpu-off", status="OFFLINE", system_stats=stale, queue_remaining=5)
    html = admin_client_.get(reverse("admin_dashboard")).content.decode()
    online, offline = (html.split(f'data-node="{name}"')[1].split("</tr>")[0] for name in ("gpu-on", "gpu-off"))
    assert "<meter" in online and "7 / " in online and "8.0" in online
    assert "<meter" not in offline and "5 / " not in offline and "8.0" not in offline
    admin_html = admin_client_.get(reverse("admin:nodes_comfynode_changelist")).content.decode()
    offline_row = admin_html.split(">gpu-off<")[1].split("</tr>")[0]
    assert "5 / " not in offline_row and "8.0" not in offline_row and "— / 2" in offline_row


def test_admin_index_links_the_dashboard(admin_client_):
    html = admin_client_.get(reverse("admin:index")).content.decode()
    assert 'id="admin-dashboard-link"' in html


def test_compiled_russian_catalogue_is_up_to_date():
    """Every msgid of django.po is in the committed django.mo (a fresh machine may lack msgfmt)."""
    import gettext
    import re
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "locale/ru/LC_MESSAGES"
    po = (folder / "django.po").read_text(encoding="utf-8")
    with open(folder / "django.mo", "rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    msgids = {
        m.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
        for m in re.findall(r'^msgid "(.+)"$', po, flags=re.M)
    }
    singular = {k for k in catalog if isinstance(k, str)} | {k[0] for k in catalog if isinstance(k, tuple)}
    assert msgids - singular == set()
