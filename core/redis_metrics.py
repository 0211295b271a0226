"""Prometheus counters and histograms kept in Redis, shared by every process of the site.

prometheus_client's own metrics live in one process's memory; ours are updated by web
processes and job runners on several machines. Here each metric is one Redis hash (a field
per label set and bucket), updated with HINCRBY/HINCRBYFLOAT on a pipeline the caller
sends, and read back at scrape time by `RedisCollector`, a prometheus_client collector, so
any web instance reports the site-wide, cumulative figures.

A histogram stores how many observations fell into each bucket alone; the collector adds
them up into Prometheus's cumulative `le` buckets.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Sequence

import redis
from django.conf import settings
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily


def _key(name: str) -> str:
    return f"{settings.REDIS_PREFIX}:metrics:{name}"


def _field(labels: Sequence[str], part: str = "") -> str:
    return json.dumps([*labels, part] if part else list(labels))


class Counter:
    """A monotonic count (exposed as `<name>_total`)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()):
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)

    def inc(self, pipe, labels: Sequence[str] = (), amount: int = 1) -> None:
        pipe.hincrby(_key(self.name), _field(labels), amount)

    def family(self, stored: dict[bytes, bytes]) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for field, value in sorted(stored.items()):
            family.add_metric(json.loads(field), float(value))
        return family


class Histogram:
    """Observations counted per bucket (upper bounds, in seconds), with their sum."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()):
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)
        self.bounds = sorted(float(bound) for bound in buckets)

    def observe(self, pipe, value: float, labels: Sequence[str] = ()) -> None:
        index = bisect.bisect_left(self.bounds, value)  # the first bucket with value <= bound
        bucket = str(self.bounds[index]) if index < len(self.bounds) else "+Inf"
        key = _key(self.name)
        pipe.hincrby(key, _field(labels, bucket), 1)
        pipe.hincrbyfloat(key, _field(labels, "sum"), value)

    def family(self, stored: dict[bytes, bytes]) -> HistogramMetricFamily:
        by_labels: dict[tuple[str, ...], dict[str, float]] = {}
        for field, value in stored.items():
            *labels, part = json.loads(field)
            by_labels.setdefault(tuple(labels), {})[part] = float(value)
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, parts in sorted(by_labels.items()):
            running = 0.0
            buckets = []
            for bound in [*self.bounds, math.inf]:
                name = "+Inf" if bound == math.inf else str(bound)
                running += parts.get(name, 0.0)
                buckets.append((name, running))
            family.add_metric(list(labels), buckets, parts.get("sum", 0.0))
        return family


class RedisCollector:
    """A prometheus_client collector for metrics kept in Redis (one round trip per scrape)."""

    def __init__(self, metrics: Sequence[Counter | Histogram], client: Callable[[], redis.Redis]):
        self.metrics, self.client = list(metrics), client

    def collect(self):
        pipe = self.client().pipeline(transaction=False)
        for metric in self.metrics:
            pipe.hgetall(_key(metric.name))
        for metric, stored in zip(self.metrics, pipe.execute()):
            yield metric.family(stored)
