"""Prometheus `/metrics`: job counters and histograms, and the current state of jobs and nodes.

Counters and histograms (jobs started, requeued, finished, errors; run time, queue wait,
dispatch latency) are cumulative, kept in Redis by every process where jobs start and end
(jobs.metrics). Gauges of the current state are read from the database at scrape time. Any
web instance reports the same site-wide figures. When METRICS_TOKEN is set, only
`Authorization: Bearer <METRICS_TOKEN>` may read them; without it they are served only with
DEBUG=1 (METRICS_OPEN_WITHOUT_TOKEN) and production answers 404.
"""

from __future__ import annotations

import hmac
import logging

import redis
from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from core.redis_client import shared_redis
from core.redis_metrics import RedisCollector
from jobs.metrics import JOB_METRICS
from jobs.models import Job
from nodes.models import ComfyNode

logger = logging.getLogger("comfyportal")


class DatabaseCollector:
    """The current state, read at scrape time from the rows the admin dashboard reads."""

    def collect(self):
        jobs = GaugeMetricFamily("comfyportal_jobs", "Jobs by status.", labels=["status"])
        counts = dict(Job.objects.values_list("status").annotate(n=Count("id")))
        for status, _ in Job.Status.choices:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs

        up = GaugeMetricFamily("comfyportal_node_up", "1 when the node answers health checks.", labels=["node"])
        queue = GaugeMetricFamily("comfyportal_node_queue", "Prompts on the node (all sources).", labels=["node"])
        vram_used = GaugeMetricFamily("comfyportal_node_vram_used_bytes", "VRAM in use.", labels=["node"])
        vram_total = GaugeMetricFamily("comfyportal_node_vram_total_bytes", "VRAM in all.", labels=["node"])
        for node in ComfyNode.objects.filter(remove_when_drained=False):
            up.add_metric([node.name], 1 if node.status == ComfyNode.Status.ONLINE else 0)
            if node.live_queue is not None:  # an offline node's last queue is not its queue now
                queue.add_metric([node.name], node.live_queue)
            free, total = node.vram
            if total is not None:
                vram_total.add_metric([node.name], total)
                vram_used.add_metric([node.name], total - (free or 0))
        yield from (up, queue, vram_used, vram_total)


_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisCollector(JOB_METRICS, shared_redis))
_registry.register(DatabaseCollector())


@require_GET
def metrics_view(request):
    if settings.METRICS_TOKEN:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent, f"Bearer {settings.METRICS_TOKEN}"):
            return HttpResponseForbidden("metrics need the bearer token\n", content_type="text/plain")
    elif not settings.METRICS_OPEN_WITHOUT_TOKEN:
        raise Http404("metrics are off until METRICS_TOKEN is set")
    try:
        body = generate_latest(_registry)
    except redis.RedisError as exc:  # a failed scrape, not counters that seem to restart from zero
        logger.warning("cannot read the metrics from Redis: %s", exc)
        return HttpResponse("metrics unavailable: Redis does not answer\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
