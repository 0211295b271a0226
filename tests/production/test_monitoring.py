"""/metrics (Prometheus), JSON logs, retention."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from comfyportal.logging import JsonFormatter
from core.redis_client import shared_redis
from jobs import lifecycle
from jobs.metrics import JOB_METRICS
from jobs.models import Job, JobFile
from jobs.retention import delete_expired
from tests.factories import make_job, make_node, make_workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def job_metrics(transactional_db, settings):
    """Empty job metrics in Redis, and committed status changes (metrics count on commit)."""
    client = shared_redis()
    keys = [f"{settings.REDIS_PREFIX}:metrics:{metric.name}" for metric in JOB_METRICS]
    client.delete(*keys)
    yield client
    client.delete(*keys)


def run_job(user, workflow, node, *, wait: float, dispatch: float, run: float, status="DONE", error="", held=False):
    """A job through the lifecycle: submitted, claimed after `wait` s, accepted by its node
    `dispatch` s after submit, ended `run` s after it started (`held`: ended as the runner
    does, with its copy of the job)."""
    job = make_job(user, workflow)
    started = timezone.now()
    Job.objects.filter(pk=job.pk).update(created_at=started - timedelta(seconds=wait))
    lifecycle.claim({job.pk: (node.pk, str(job.pk), "client")}, runner_id="r1", now=started)
    copy = Job.objects.select_related("workflow").get(pk=job.pk) if held else None
    ended = lifecycle.transition(
        job.pk,
        from_status="RUNNING",
        to_status=status,
        held=copy,
        error=error,
        submitted_at=started - timedelta(seconds=wait - dispatch),
        finished_at=started + timedelta(seconds=run),
    )
    assert ended
    return job


def scrape(**headers) -> dict:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def samples(families: dict, name: str) -> dict:
    """{(sample name, sorted labels): value} of one metric family."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in families[name].samples}


def test_metrics_report_jobs_nodes_and_histograms(alice, job_metrics):
    workflow = make_workflow()
    gpu_a = make_node(name="gpu-a", system_stats={"devices": [{"vram_free": 4, "vram_total": 10}]}, queue_remaining=3)
    make_node(
        name="gpu-b",
        status="OFFLINE",
        system_stats={"devices": [{"vram_free": 4, "vram_total": 10}]},
        queue_remaining=2,
    )
    run_job(alice, workflow, gpu_a, wait=1, dispatch=0.5, run=12)
    run_job(alice, workflow, gpu_a, wait=1, dispatch=0.5, run=1, status="ERROR", error="ComfyUI error: node 3 failed")
    make_job(alice, workflow)
    body = Client().get("/metrics").content.decode()
    assert 'comfyportal_jobs{status="DONE"} 1.0' in body
    assert 'comfyportal_jobs{status="QUEUED"} 1.0' in body
    assert 'comfyportal_node_up{node="gpu-a"} 1.0' in body and 'comfyportal_node_up{node="gpu-b"} 0.0' in body
    assert 'comfyportal_node_queue{node="gpu-a"} 3.0' in body
    assert 'comfyportal_node_vram_used_bytes{node="gpu-a"} 6.0' in body
    assert 'comfyportal_node_queue{node="gpu-b"}' not in body, "an offline node's figures are stale"
    assert 'comfyportal_node_vram_used_bytes{node="gpu-b"}' not in body
    assert 'comfyportal_job_duration_seconds_bucket{le="20.0",workflow="tiny"} 1.0' in body
    assert 'comfyportal_job_duration_seconds_bucket{le="10.0",workflow="tiny"} 0.0' in body
    assert 'comfyportal_job_errors_total{kind="execution"} 1.0' in body
    assert 'comfyportal_jobs_finished_total{status="DONE",workflow="tiny"} 1.0' in body
    assert 'comfyportal_jobs_finished_total{status="ERROR",workflow="tiny"} 1.0' in body
    assert "comfyportal_jobs_started_total 2.0" in body
    assert "comfyportal_queue_wait_seconds_count 2.0" in body
    assert 'comfyportal_queue_wait_seconds_bucket{le="1.0"} 2.0' in body
    assert "comfyportal_dispatch_latency_seconds_count 2.0" in body
    assert 'comfyportal_dispatch_latency_seconds_bucket{le="0.25"} 0.0' in body
    assert 'comfyportal_dispatch_latency_seconds_bucket{le="0.5"} 2.0' in body


def test_histograms_are_cumulative_across_scrapes_and_their_buckets_never_decrease(alice, job_metrics):
    workflow, node = make_workflow(), make_node()
    for run in (0.5, 3, 3, 45):
        run_job(alice, workflow, node, wait=0.2, dispatch=0.1, run=run)
    first = samples(scrape(), "comfyportal_job_duration_seconds")
    for run in (3, 7200):  # more jobs end: the same buckets count on, none restarts
        run_job(alice, workflow, node, wait=0.2, dispatch=0.1, run=run)
    second = samples(scrape(), "comfyportal_job_duration_seconds")
    for (name, labels), value in first.items():
        assert second[(name, labels)] >= value
    buckets = sorted(
        (float(dict(labels)["le"]), value) for (name, labels), value in second.items() if name.endswith("_bucket")
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # what histogram_quantile() needs
    assert buckets[-1] == (float("inf"), 6.0) and dict(buckets)[5.0] == 4.0 and dict(buckets)[1.0] == 1.0
    assert second[("comfyportal_job_duration_seconds_count", (("workflow", "tiny"),))] == 6.0
    assert second[("comfyportal_job_duration_seconds_sum", (("workflow", "tiny"),))] == pytest.approx(7254.5)


def test_counters_add_up_what_several_processes_record(alice, job_metrics, settings):
    """Each web or worker process records into the same Redis; a scrape sums them all."""
    run_job(alice, make_workflow(), make_node(), wait=0.2, dispatch=0.1, run=3)
    other_process = (
        "import django; django.setup()\n"
        "from jobs import metrics\n"
        "metrics._record(lambda pipe: (metrics.JOBS_FINISHED.inc(pipe, ['DONE', 'tiny']),"
        " metrics.JOB_DURATION.observe(pipe, 40.0, ['tiny'])))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "comfyportal.test_settings",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
    }
    subprocess.run([sys.executable, "-c", other_process], env=env, check=True, timeout=60)
    body = Client().get("/metrics").content.decode()
    assert 'comfyportal_jobs_finished_total{status="DONE",workflow="tiny"} 2.0' in body
    assert 'comfyportal_job_duration_seconds_bucket{le="5.0",workflow="tiny"} 1.0' in body
    assert 'comfyportal_job_duration_seconds_bucket{le="60.0",workflow="tiny"} 2.0' in body


def test_requeues_count_and_a_requeued_job_starts_again(alice, job_metrics):
    workflow, node = make_workflow(), make_node()
    job = make_job(alice, workflow)
    lifecycle.claim({job.pk: (node.pk, "p1", "c1")}, runner_id="r1", now=timezone.now())
    assert lifecycle.transition(job.pk, from_status="RUNNING", to_status="QUEUED")
    lifecycle.claim({job.pk: (node.pk, "p2", "c2")}, runner_id="r1", now=timezone.now())
    lifecycle.claim({job.pk: (node.pk, "p3", "c3")}, runner_id="r2", now=timezone.now())  # already taken
    families = scrape()
    assert samples(families, "comfyportal_jobs_requeued")[("comfyportal_jobs_requeued_total", ())] == 1.0
    assert samples(families, "comfyportal_jobs_started")[("comfyportal_jobs_started_total", ())] == 2.0


def test_a_status_change_that_is_rolled_back_is_not_counted(alice, job_metrics):
    job = make_job(alice, make_workflow())
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.transition(job.pk, from_status="QUEUED", to_status="CANCELLED")
        raise RuntimeError("the request failed after the change")
    assert "comfyportal_jobs_finished_total{" not in Client().get("/metrics").content.decode()


def test_a_redis_failure_never_breaks_a_job(alice, job_metrics, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(redis.client.Pipeline, "execute", down)
    job = make_job(alice, make_workflow())
    assert lifecycle.transition(job.pk, from_status="QUEUED", to_status="CANCELLED")
    assert Job.objects.get(pk=job.pk).status == "CANCELLED"
    assert "could not update job metrics" in caplog.text
    assert Client().get("/metrics").status_code == 503  # a failed scrape, not counters back at zero


def test_metrics_token_guards_the_endpoint(settings):
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_without_a_token_are_404_in_production_and_open_with_debug(settings):
    """Node names and workflow names are not for anyone who finds the URL."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_OPEN_WITHOUT_TOKEN = False  # DEBUG=0
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    settings.METRICS_TOKEN = ""
    settings.METRICS_OPEN_WITHOUT_TOKEN = True  # DEBUG=1: a local look
    assert Client().get("/metrics").status_code == 200


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


def test_a_job_ended_from_the_runners_copy_is_observed_without_reading_it_back(alice, job_metrics):
    """The runner ends a job with the copy it holds: the metrics read the same times from it
    as from the row, and the ending costs no SELECT of the job."""
    workflow, node = make_workflow(), make_node(name="gpu-a")
    run_job(alice, workflow, node, wait=1, dispatch=0.5, run=12)
    with CaptureQueriesContext(connection) as queries:
        run_job(alice, workflow, node, wait=1, dispatch=0.5, run=12, held=True)
    # The status UPDATE (on PostgreSQL, WITH the event number taken, then UPDATE).
    ending = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "WITH"))][-1]
    after_ending = [q["sql"] for q in queries][[q["sql"] for q in queries].index(ending) + 1 :]
    assert not [sql for sql in after_ending if sql.lstrip().upper().startswith("SELECT")]
    families = scrape()
    duration = samples(families, "comfyportal_job_duration_seconds")
    assert duration[("comfyportal_job_duration_seconds_count", (("workflow", "tiny"),))] == 2.0
    assert duration[("comfyportal_job_duration_seconds_bucket", (("le", "20.0"), ("workflow", "tiny")))] == 2.0
    assert duration[("comfyportal_job_duration_seconds_bucket", (("le", "10.0"), ("workflow", "tiny")))] == 0.0
    wait = samples(families, "comfyportal_queue_wait_seconds")
    assert wait[("comfyportal_queue_wait_seconds_bucket", (("le", "1.0"),))] == 2.0
    latency = samples(families, "comfyportal_dispatch_latency_seconds")
    assert latency[("comfyportal_dispatch_latency_seconds_bucket", (("le", "0.5"),))] == 2.0
