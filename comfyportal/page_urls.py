"""The user-facing pages (server-rendered + HTMX). Included at "" by comfyportal/urls.py."""

from __future__ import annotations

from django.urls import path

from accounts import views as account_views
from billing import views as billing_views
from comfyportal import dashboard
from jobs import views as job_views
from usage import views as usage_views
from webhooks import views as webhook_views
from workflows import views as workflow_views

urlpatterns = [
    path("login/", account_views.login_view, name="login"),
    path("logout/", account_views.logout_view, name="logout"),
    path("keys/", account_views.api_keys, name="api_keys"),
    path("webhooks/", webhook_views.webhooks_page, name="webhooks"),
    path("usage/", usage_views.usage_page, name="usage"),
    path("usage/export.csv", usage_views.usage_csv, name="usage_csv"),
    path("credits/", billing_views.credits_page, name="credits"),
    path("", workflow_views.catalogue, name="catalogue"),
    path("w/<slug:slug>/", job_views.workflow_page, name="workflow_form"),
    path("w/<slug:slug>/example/", workflow_views.example_picture, name="workflow_example"),
    path("jobs/new/<slug:slug>/", job_views.submit_from_form, name="job_submit"),
    path("jobs/", job_views.my_jobs, name="my_jobs"),
    path("jobs/<uuid:job_id>/", job_views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/cancel/", job_views.cancel, name="job_cancel"),
    path("jobs/<uuid:job_id>/retry/", job_views.retry, name="job_retry"),
    path("jobs/<uuid:job_id>/delete/", job_views.delete, name="job_delete"),
    path("jobs/<uuid:job_id>/share/", job_views.share, name="job_share"),
    path("gallery/", job_views.gallery, name="gallery"),
    path("files/<uuid:file_id>/delete/", job_views.delete_file, name="file_delete"),
    path("admin-dashboard/", dashboard.admin_dashboard, name="admin_dashboard"),
]
