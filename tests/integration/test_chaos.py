"""Chaos: nodes and a worker die and come back under load; nothing is lost or duplicated."""

from __future__ import annotations

import pytest

from bench.chaos import run_chaos
from nodes.models import ComfyNode
from tests.factories import make_workflow
from tests.integration.conftest import HttpApi

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_chaos_loses_and_duplicates_nothing(stack_factory, user_factory):
    stack = stack_factory(nodes=4, webs=2, workers=2, node_args={"job_time": 0.6, "cache_none": True},
                          env={"JOB_RUNNERS": 2})
    for i in range(4):
        user = user_factory(f"user{i}")
        user.max_concurrent_jobs = 100
        user.save()
    make_workflow()
    for i, node in enumerate(stack.nodes):
        ComfyNode.objects.create(name=f"n{i}", base_url=node.url)
    users = [HttpApi(stack.web_urls[i % 2], f"user{i}") for i in range(4)]
    report = run_chaos(stack, users=users, jobs=120, every=2.0, window=20, timeout=150)
    assert report["node_kills"] >= 2 and report["worker_kills"] >= 1, report
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["done_without_result"] == 0, report
    assert report["errors_without_reason"] == 0, report
    assert report["done"] + report["error"] == 120
