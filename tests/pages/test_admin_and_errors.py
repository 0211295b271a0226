"""The admin under our name (header, title, the System section, readable dashboard charts,
offline servers marked), the favicon, and the 404 and 500 pages in the site's style."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.template.loader import get_template
from django.test import Client
from django.urls import path, reverse

from core.charts import vertical_bars
from tests.factories import make_node
from tests.pages.conftest import logged_in

pytestmark = pytest.mark.django_db


def _raise(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _raise), path("", lambda request: None, name="catalogue")]


def test_admin_pages_carry_our_name_and_favicon(admin_client_):
    html = admin_client_.get(reverse("admin:index")).content.decode()
    assert '<div id="site-name"><a href="/admin/">comfyportal</a></div>' in html
    assert re.search(r"<title>Administration \| comfyportal</title>", html)
    assert "Django administration" not in html and "Django site admin" not in html
    assert 'rel="icon" href="/static/favicon.svg"' in html
    dashboard = admin_client_.get(reverse("admin_dashboard")).content.decode()
    assert '<div id="site-name"><a href="/admin/">comfyportal</a></div>' in dashboard


def test_the_plumbing_is_one_system_section_at_the_end_for_superusers(admin_client_):
    html = admin_client_.get(reverse("admin:index")).content.decode()
    sections = re.findall(r'<div class="app-([\w-]+) module', html)
    assert sections[-1] == "system" and "django_q" not in sections and "token_blacklist" not in sections
    system = html.split('<div class="app-system module')[1].split("</table>")[0]
    assert "/admin/django_q/" in system and "/admin/token_blacklist/" in system
    assert "accounts" in sections and "jobs" in sections


def test_a_staff_member_who_is_not_a_superuser_sees_no_system_section(db):
    from tests.conftest import make_user

    staff = make_user("staffer")
    type(staff).objects.filter(pk=staff.pk).update(is_staff=True)
    staff.refresh_from_db()
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["django_q", "jobs"]))
    html = logged_in(staff).get(reverse("admin:index")).content.decode()
    assert "app-jobs" in html and "app-system" not in html and "/admin/django_q/" not in html


def test_bar_chart_geometry_names_its_axes_room():
    chart = vertical_bars([0, 5, 10], ["00", "01", "02"], bar_width=20)
    assert [t["value"] for t in chart["y_ticks"]] == [0, 5, 10]
    assert [t["y"] for t in chart["y_ticks"]] == [120, 60, 0]
    assert chart["svg_width"] == chart["plot_left"] + 3 * 24 and chart["svg_height"] > 120 + chart["plot_top"]
    assert chart["bars"][2]["height"] == 120 and chart["bars"][0]["height"] == 0


def test_dashboard_charts_have_axis_names_and_offline_servers_are_marked(admin_client_):
    make_node("gpu-on")
    make_node("gpu-off", status="OFFLINE")
    html = admin_client_.get(reverse("admin_dashboard")).content.decode()
    jobs_chart = html.split('id="chart-jobs"')[1].split("</section>")[0]
    assert ">Hour (UTC)</text>" in jobs_chart and ">Jobs</text>" in jobs_chart and 'class="chart-tick"' in jobs_chart
    offline = html.split('data-node="gpu-off"')[1].split("</tr>")[0]
    assert (
        'class="node-row node-row--offline"' in offline and "node-status--offline" in offline and "✕ Offline" in offline
    )
    assert "node-row--online" in html.split('data-node="gpu-on"')[1]


def test_chart_labels_are_at_least_11px():
    from django.conf import settings

    for css in ("static/css/admin.css", "static/css/site.css"):
        text = (settings.BASE_DIR / css).read_text()
        sizes = [int(px) for px in re.findall(r"chart[^{]*text[^{]*\{[^}]*font-size:\s*(\d+)px", text)]
        assert sizes and min(sizes) >= 11, css


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    page = Client().get(reverse("login")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page


def test_404_is_in_the_site_style_in_both_languages(settings, alice_client):
    settings.DEBUG = False
    response = alice_client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in html and "/static/css/site.css" in html and 'class="brand"' in html
    alice_client.cookies["django_language"] = "ru"
    html = alice_client.get("/no/such/page/").content.decode()
    assert '<html lang="ru">' in html and "Страница не найдена" in html


@pytest.mark.urls("tests.pages.test_admin_and_errors")
def test_500_is_in_the_site_style_and_renders_without_request_or_database(settings, django_assert_num_queries):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/boom/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in html and "/static/css/site.css" in html
    with django_assert_num_queries(0):
        html = get_template("500.html").render()  # what django.views.defaults.server_error does
    assert "Something went wrong" in html and 'href="/"' in html
