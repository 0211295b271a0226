"""Chaos: nodes and a worker die and come back under load; nothing is lost or duplicated."""

from __future__ import annotations

import pytest

from bench.chaos import run_chaos
from tests.integration.conftest import HttpApi, start_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_chaos_loses_and_duplicates_nothing(stack_factory):
    stack = start_pool(stack_factory, users=4, job_time=0.6)
    users = [HttpApi(stack.web_urls[i % 2], f"user{i}") for i in range(4)]
    report = run_chaos(stack, users=users, jobs=120, every=2.0, window=20, timeout=150)
    assert report["node_kills"] >= 2 and report["worker_kills"] >= 1, report
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["done_without_result"] == 0, report
    assert report["errors_without_reason"] == 0, report
    assert report["done"] + report["error"] == 120
    assert_usage_is_exact(report, job_time=0.6)


def assert_usage_is_exact(report: dict, *, job_time: float) -> None:
    """Usage equals the sum of the jobs' own times: each job that succeeded counts the node time
    of the attempt that ended it (about job_time), never a lost attempt's; lost attempts are
    listed apart."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import FailedAttempt, Job
    from usage import reports

    times = list(Job.objects.filter(status="DONE").values_list("gpu_seconds", flat=True))
    assert len(times) == report["done"]
    assert all(t is not None and job_time <= t < job_time + 5 for t in times), sorted(times, key=str)[-5:]
    today = timezone.localdate()
    usage = reports.report(reports.Query(today - timedelta(days=1), today + timedelta(days=1), "day", None))
    totals = usage["totals"]
    assert totals["succeeded"] == report["done"] and totals["jobs"] == 120
    assert totals["gpu_seconds"] == pytest.approx(sum(times), abs=0.01)
    assert totals["failed_attempts"] == FailedAttempt.objects.count()
    assert FailedAttempt.objects.count() >= report["retried"]
