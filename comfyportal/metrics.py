"""Prometheus `/metrics`: jobs, nodes and errors, read from the database at scrape time.

Figures come from the same rows the admin dashboard reads. When METRICS_TOKEN is set, only
`Authorization: Bearer <METRICS_TOKEN>` may read them.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

DURATION_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]
WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900]


def _histogram(name: str, doc: str, values_by_label: dict[str, list[float]], buckets: list[float], label: str):
    family = HistogramMetricFamily(name, doc, labels=[label] if label else [])
    for key, values in values_by_label.items():
        counts = [sum(1 for v in values if v <= b) for b in buckets]
        family.add_metric(
            [key] if label else [],
            [(str(float(b)), c) for b, c in zip(buckets, counts)] + [("+Inf", len(values))],
            sum(values),
        )
    return family


class DatabaseCollector:
    """Collects at scrape time, so every web instance reports the same shared truth."""

    def collect(self):
        from jobs.models import Job
        from nodes.models import ComfyNode

        jobs = GaugeMetricFamily("comfyportal_jobs", "Jobs by status.", labels=["status"])
        counts = dict(Job.objects.values_list("status").annotate(n=Count("id")))
        for status, _ in Job.Status.choices:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs

        finished = Job.objects.filter(status=Job.Status.DONE, started_at__isnull=False, finished_at__isnull=False)
        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        wait = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
        per_workflow: dict[str, list[float]] = {}
        waits: list[float] = []
        dispatch: list[float] = []
        for slug, d, w, created, submitted in (
            finished.annotate(d=duration, w=wait)
            .order_by("-finished_at")
            .values_list("workflow__slug", "d", "w", "created_at", "submitted_at")[:5000]
        ):
            per_workflow.setdefault(slug, []).append(d.total_seconds())
            waits.append(w.total_seconds())
            if submitted:
                dispatch.append((submitted - created).total_seconds())
        yield _histogram(
            "comfyportal_job_duration_seconds",
            "Run time of finished jobs (last 5000).",
            per_workflow,
            DURATION_BUCKETS,
            "workflow",
        )
        yield _histogram(
            "comfyportal_queue_wait_seconds",
            "Time from submit to a node slot (last 5000).",
            {"": waits},
            WAIT_BUCKETS,
            "",
        )
        yield _histogram(
            "comfyportal_dispatch_latency_seconds",
            "Time from submit to POST /prompt (last 5000).",
            {"": dispatch},
            WAIT_BUCKETS,
            "",
        )

        errors = GaugeMetricFamily("comfyportal_job_errors", "Jobs that ended in ERROR, by kind.", labels=["kind"])
        for kind, count in _error_kinds(Job).items():
            errors.add_metric([kind], count)
        yield errors

        up = GaugeMetricFamily("comfyportal_node_up", "1 when the node answers health checks.", labels=["node"])
        queue = GaugeMetricFamily("comfyportal_node_queue", "Prompts on the node (all sources).", labels=["node"])
        vram_used = GaugeMetricFamily("comfyportal_node_vram_used_bytes", "VRAM in use.", labels=["node"])
        vram_total = GaugeMetricFamily("comfyportal_node_vram_total_bytes", "VRAM in all.", labels=["node"])
        for node in ComfyNode.objects.filter(remove_when_drained=False):
            up.add_metric([node.name], 1 if node.status == ComfyNode.Status.ONLINE else 0)
            queue.add_metric([node.name], node.queue_remaining)
            free, total = node.vram
            if total is not None:
                vram_total.add_metric([node.name], total)
                vram_used.add_metric([node.name], total - (free or 0))
        yield from (up, queue, vram_used, vram_total)


def _error_kinds(Job) -> dict[str, int]:
    kinds = {"rejected": 0, "execution": 0, "node_lost": 0, "timeout": 0, "other": 0}
    for error in Job.objects.filter(status=Job.Status.ERROR).values_list("error", flat=True)[:10000]:
        if error.startswith("ComfyUI rejected"):
            kinds["rejected"] += 1
        elif error.startswith("ComfyUI error"):
            kinds["execution"] += 1
        elif error.startswith("Gave up after"):
            kinds["node_lost"] += 1
        elif error.startswith("Timed out"):
            kinds["timeout"] += 1
        else:
            kinds["other"] += 1
    return kinds


_registry = CollectorRegistry(auto_describe=False)
_registry.register(DatabaseCollector())


@require_GET
def metrics_view(request):
    if settings.METRICS_TOKEN:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent, f"Bearer {settings.METRICS_TOKEN}"):
            return HttpResponseForbidden("metrics need the bearer token\n", content_type="text/plain")
    return HttpResponse(generate_latest(_registry), content_type="text/plain; version=0.0.4; charset=utf-8")
