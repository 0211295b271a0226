"""/metrics (Prometheus), JSON logs, retention."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from comfyportal.logging import JsonFormatter
from jobs.models import Job, JobFile
from jobs.retention import delete_expired
from tests.factories import make_job, make_node, make_workflow

pytestmark = pytest.mark.django_db


def test_metrics_report_jobs_nodes_and_histograms(alice):
    workflow = make_workflow()
    make_node(name="gpu-a", system_stats={"devices": [{"vram_free": 4, "vram_total": 10}]}, queue_remaining=3)
    make_node(name="gpu-b", status="OFFLINE")
    now = timezone.now()
    make_job(alice, workflow, status="DONE", started_at=now - timedelta(seconds=12), submitted_at=now, finished_at=now)
    Job.objects.filter(status="DONE").update(created_at=now - timedelta(seconds=13))
    make_job(alice, workflow, status="ERROR", error="ComfyUI error: node 3 (KSampler) failed: oom")
    make_job(alice, workflow)
    body = Client().get("/metrics").content.decode()
    assert 'comfyportal_jobs{status="DONE"} 1.0' in body
    assert 'comfyportal_jobs{status="QUEUED"} 1.0' in body
    assert 'comfyportal_node_up{node="gpu-a"} 1.0' in body and 'comfyportal_node_up{node="gpu-b"} 0.0' in body
    assert 'comfyportal_node_queue{node="gpu-a"} 3.0' in body
    assert 'comfyportal_node_vram_used_bytes{node="gpu-a"} 6.0' in body
    assert 'comfyportal_job_duration_seconds_bucket{le="20.0",workflow="tiny"} 1.0' in body
    assert 'comfyportal_job_duration_seconds_bucket{le="10.0",workflow="tiny"} 0.0' in body
    assert 'comfyportal_job_errors{kind="execution"} 1.0' in body
    assert "comfyportal_queue_wait_seconds_count 1.0" in body
    assert "comfyportal_dispatch_latency_seconds_count 1.0" in body


def test_metrics_token_guards_the_endpoint(settings):
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_admin_stats_api(admin_api, alice):
    make_job(alice, make_workflow(), status="DONE")
    stats = admin_api.get("/api/admin/stats").json()
    assert stats["jobs_by_status"]["DONE"] == 1 and len(stats["jobs_per_hour"]) == 24


def test_json_log_lines_carry_fields():
    record = logging.LogRecord("comfyportal.jobs", logging.INFO, __file__, 1, "job %s DONE", ("j1",), None)
    record.job = "j1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job j1 DONE" and line["job"] == "j1" and line["level"] == "INFO"


def _file(owner, job=None, days_old=0, kind="RESULT"):
    record = JobFile(owner=owner, job=job, kind=kind, content_type="image/png", sha256="x")
    record.file.save("f.png", ContentFile(b"png"), save=False)
    record.save()
    JobFile.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    return record


def test_retention_deletes_old_files_but_never_of_active_jobs(settings, alice):
    workflow = make_workflow()
    settings.RESULT_RETENTION_DAYS = None
    old = _file(alice, make_job(alice, workflow, status="DONE"), days_old=40)
    assert delete_expired() == 0  # off by default
    settings.RESULT_RETENTION_DAYS = 30
    running = _file(alice, make_job(alice, workflow, status="RUNNING"), days_old=40)
    queued_upload = _file(alice, make_job(alice, workflow, status="QUEUED"), days_old=40, kind="IMAGE")
    fresh = _file(alice, make_job(alice, workflow, status="DONE"), days_old=1)
    stray_upload = _file(alice, None, days_old=40, kind="IMAGE")
    path = old.file.path
    assert delete_expired() == 2
    remaining = set(JobFile.objects.values_list("pk", flat=True))
    assert remaining == {running.pk, queued_upload.pk, fresh.pk}
    assert stray_upload.pk not in remaining
    import os

    assert not os.path.exists(path)
