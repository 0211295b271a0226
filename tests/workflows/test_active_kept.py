"""The active version of a workflow, kept per process: served without a query, never stale."""

from __future__ import annotations

import pytest
import redis
from django.urls import reverse

from core.errors import NotFound
from core.redis_client import shared_redis
from tests.factories import change_row_elsewhere, make_workflow
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


def test_a_kept_versions_copies_share_one_parsed_spec():
    make_workflow("parsed")
    first, again = get_active_workflow("parsed"), get_active_workflow("parsed")
    assert first is not again and first.parsed_spec is again.parsed_spec
    again.spec = {**again.spec, "inputs": again.spec["inputs"][:1]}  # a new document is parsed anew
    assert [f.id for f in again.parsed_spec.inputs] == [again.spec["inputs"][0]["id"]]
    assert len(first.parsed_spec.inputs) == len(first.spec["inputs"]) > 1


def test_a_change_by_another_process_is_seen_at_once():
    workflow = make_workflow("elsewhere")
    get_active_workflow("elsewhere")
    # Another process switches the workflow off: its row changes, and its signal replaces the mark.
    change_row_elsewhere(Workflow, workflow.pk, is_active=False)
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
    change_row_elsewhere(Workflow, workflow.pk, is_active=False)
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


def _admin_action(admin_user, action: str, workflow: Workflow) -> None:
    from tests.pages.conftest import logged_in

    changelist = reverse("admin:workflows_workflow_changelist")
    response = logged_in(admin_user).post(changelist, {"action": action, "_selected_action": [workflow.pk]})
    assert response.status_code == 302
    assert Workflow.objects.get(pk=workflow.pk).is_active is (action == "activate")


# The admin's bulk actions change rows with QuerySet.update(), which sends no post_save: the
# change must reach the other processes all the same. Each test keeps what "another process"
# (a second web instance) kept before the action, then submits as that process.


def test_a_workflow_switched_off_by_the_admin_action_is_refused_by_every_process(admin_user, alice_api, monkeypatch):
    workflow = make_workflow("switched-off")
    get_active_workflow("switched-off")
    other_process = dict(services._active)
    _admin_action(admin_user, "deactivate", workflow)
    monkeypatch.setattr(services, "_active", other_process)  # from here on, this is that other process
    refused = alice_api.post("/api/jobs", {"workflow": "switched-off", "inputs": {}})
    assert refused.status_code == 404
    assert refused.json()["detail"] == "workflow: no active workflow 'switched-off'."


def test_a_version_switched_on_by_the_admin_action_is_used_by_every_process(admin_user, alice_api, monkeypatch):
    make_workflow("switched-on", version="1.0.0")
    newer = make_workflow("switched-on", version="1.1.0", is_active=False)
    assert get_active_workflow("switched-on").version == "1.0.0"
    other_process = dict(services._active)
    _admin_action(admin_user, "activate", newer)
    monkeypatch.setattr(services, "_active", other_process)
    submitted = alice_api.post("/api/jobs", {"workflow": "switched-on", "inputs": {}})
    assert submitted.status_code == 201 and submitted.json()["workflow_version"] == "1.1.0"
