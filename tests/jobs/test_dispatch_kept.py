"""A dispatch step hands the runner each job's node and workflow version from per-process
copies: never stale (a saved node is read again), cheaper than reading them per job."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.redis_client import shared_redis
from jobs.models import Job
from jobs.scheduler import dispatch
from tests.conftest import make_user
from tests.factories import change_row_elsewhere, make_job, make_node, make_workflow
from workflows.models import Workflow
from workflows.services import CHANGES_KEY

pytestmark = pytest.mark.django_db


def test_a_node_saved_since_the_last_step_is_handed_over_as_it_is_now():
    user = make_user("kept-node", max_concurrent_jobs=10)
    workflow = make_workflow()
    node = make_node(base_url="http://10.0.0.1:8188", max_queue=1)
    make_job(user, workflow)
    first = dispatch(runner_id="r1").jobs
    assert [job.node.base_url for job in first] == ["http://10.0.0.1:8188"]
    # An admin moves the node and gives it a proxy header; the job on it ends.
    node.refresh_from_db()
    node.base_url, node.auth_header = "http://10.0.0.2:8188", "Authorization: Bearer new"
    node.save()
    Job.objects.filter(pk=first[0].pk).update(status="DONE")
    make_job(user, workflow)
    second = dispatch(runner_id="r1").jobs
    assert [(job.node.base_url, job.node.auth_header) for job in second] == [
        ("http://10.0.0.2:8188", "Authorization: Bearer new")
    ]


def test_a_node_unchanged_and_a_kept_version_cost_no_query_of_their_own():
    user = make_user("kept-version", max_concurrent_jobs=10)
    workflow = make_workflow()
    make_node(max_queue=4)
    make_job(user, workflow)
    assert [job.workflow.graph for job in dispatch(runner_id="r1").jobs] == [workflow.graph]
    make_job(user, workflow)
    with CaptureQueriesContext(connection) as step:
        jobs = dispatch(runner_id="r1").jobs
    assert [(job.workflow.pk, job.workflow.spec["slug"]) for job in jobs] == [(workflow.pk, workflow.slug)]
    # Neither a class list (the node's or the version's) nor a workflow is read again.
    assert not [
        q["sql"] for q in step.captured_queries if "class_types" in q["sql"] or Workflow._meta.db_table in q["sql"]
    ]


def test_a_workflow_change_anywhere_makes_the_next_step_read_versions_again():
    user = make_user("changed-version", max_concurrent_jobs=10)
    workflow = make_workflow(class_types=["EmptyImage"])
    make_node(max_queue=4, class_types=["EmptyImage"])
    make_job(user, workflow)
    dispatch(runner_id="r1")
    # Changed by another process: this one hears of it only when the mark is replaced.
    change_row_elsewhere(Workflow, workflow.pk, class_types=["EmptyImage", "NotOnAnyNode"])
    shared_redis().set(CHANGES_KEY, "another-process")
    make_job(user, workflow)
    assert dispatch(runner_id="r1").jobs == []  # its node lacks a class the version now needs
