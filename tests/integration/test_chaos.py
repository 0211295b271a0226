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
