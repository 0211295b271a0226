"""The active version of a workflow, kept per process: served without a query, never stale."""

from __future__ import annotations

import pytest
import redis

from core.errors import NotFound
from core.redis_client import shared_redis
from tests.factories import make_workflow
from workflows import services
from workflows.models import Workflow
from workflows.services import CHANGES_KEY, get_active_workflow, set_active

pytestmark = pytest.mark.django_db


def test_a_kept_version_costs_no_query_and_callers_get_their_own_copy(django_assert_num_queries):
    workflow = make_workflow("kept")
    with django_assert_num_queries(1):
        first = get_active_workflow("kept")
    first.name = "changed by a caller"
    with django_assert_num_queries(0):
        again = get_active_workflow("kept")
    assert again.pk == workflow.pk and again.name == workflow.name


def test_a_change_by_another_process_is_seen_at_once():
    workflow = make_workflow("elsewhere")
    get_active_workflow("elsewhere")
    # Another process switches the workflow off: its row changes, and its signal replaces the mark.
    Workflow.objects.filter(pk=workflow.pk).update(is_active=False)
    assert get_active_workflow("elsewhere").pk == workflow.pk  # no mark change yet: still the kept one
    shared_redis().set(CHANGES_KEY, "another-process")
    with pytest.raises(NotFound):
        get_active_workflow("elsewhere")


def test_switching_off_or_uploading_a_version_here_is_seen_at_once(django_capture_on_commit_callbacks):
    old = make_workflow("versions", version="1.0.0")
    assert get_active_workflow("versions").pk == old.pk
    new = make_workflow("versions", version="1.1.0")
    assert get_active_workflow("versions").pk == new.pk
    with django_capture_on_commit_callbacks(execute=True):
        set_active(workflow=new, is_active=False)
        mark_before_commit = shared_redis().get(CHANGES_KEY)
    # Replaced once more at commit: a process that read between the change and its commit drops it too.
    assert shared_redis().get(CHANGES_KEY) not in (None, mark_before_commit)
    assert get_active_workflow("versions").pk == old.pk


def test_a_redis_that_restarted_empty_does_not_match_an_old_mark():
    workflow = make_workflow("restart")
    get_active_workflow("restart")
    Workflow.objects.filter(pk=workflow.pk).update(is_active=False)
    shared_redis().delete(CHANGES_KEY)  # Redis restarted without its data
    with pytest.raises(NotFound):
        get_active_workflow("restart")


def test_without_redis_every_read_goes_to_the_database(monkeypatch, django_assert_num_queries):
    make_workflow("no-redis")

    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(services.shared_redis(), "get", down)
    for _ in range(2):
        with django_assert_num_queries(1):
            assert get_active_workflow("no-redis").slug == "no-redis"
