"""What a dispatch step costs the database: a fixed number of statements however many jobs it
claims, the claimed jobs coming back from the claim's UPDATE itself, complete, so that neither
the webhooks receiver nor the job's follower reads them again."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from jobs import lifecycle
from jobs.follower import JobFollower
from jobs.models import Job
from jobs.runner import Runner
from jobs.scheduler import dispatch
from nodes.comfy.client import ComfyClient
from tests.conftest import make_user
from tests.factories import make_job, make_node, make_workflow
from webhooks.delivery import forget_endpoint_users
from webhooks.models import WebhookEndpoint
from workflows.prompt import validate_inputs

S = Job.Status
# SAVEPOINT, lock the nodes, count their busy slots, read the waiting queue (users, their load
# and their first jobs), number the events, claim (UPDATE … RETURNING), RELEASE SAVEPOINT.
STEP_QUERIES = 7


def _queued(user, workflow, count: int, **fields) -> list[Job]:
    return [make_job(user, workflow, inputs=validate_inputs(workflow.spec, {}), **fields) for _ in range(count)]


def _warm(user, workflow) -> None:
    """One step first: the nodes, the workflow version and the site's limits are kept per process."""
    _queued(user, workflow, 1)
    assert len(dispatch(runner_id="r1").jobs) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 4])
def test_a_step_costs_the_same_statements_whether_it_claims_one_job_or_four(count, django_assert_num_queries):
    user = make_user("costs", max_concurrent_jobs=10)
    workflow = make_workflow()
    make_node(max_queue=8)
    _warm(user, workflow)
    _queued(user, workflow, count)
    with django_assert_num_queries(STEP_QUERIES):
        claimed = dispatch(runner_id="r1").jobs
    assert len(claimed) == count and all(job.status == S.RUNNING for job in claimed)


@pytest.mark.django_db
def test_several_users_and_nodes_cost_no_more(django_assert_num_queries):
    workflow = make_workflow()
    users = [make_user(f"costs-{n}", max_concurrent_jobs=10) for n in range(3)]
    make_node(max_queue=3), make_node(max_queue=3)
    _warm(users[0], workflow)
    for user in users:
        _queued(user, workflow, 2)
    with django_assert_num_queries(STEP_QUERIES):
        claimed = dispatch(runner_id="r1").jobs
    assert len(claimed) == 5 and {job.user_id for job in claimed} == {user.pk for user in users}


@pytest.mark.django_db
def test_the_webhooks_receiver_reads_nothing_to_learn_which_claimed_jobs_want_events(
    monkeypatch, django_assert_num_queries, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("webhooks.receivers.async_task", lambda *args: sent.append(args))
    with_endpoint, without = make_user("hooked", max_concurrent_jobs=10), make_user("plain", max_concurrent_jobs=10)
    WebhookEndpoint.objects.create(user=with_endpoint, url="https://example.com/hook", secret="whsec_x")
    forget_endpoint_users()  # as creating one through the API does; the warm step reads them again
    workflow = make_workflow()
    make_node(max_queue=8)
    _warm(without, workflow)
    hooked = _queued(with_endpoint, workflow, 1)
    own_url = _queued(without, workflow, 1, webhook_url="https://example.com/mine")
    _queued(without, workflow, 1)  # wants no event
    with django_capture_on_commit_callbacks(execute=True):
        with django_assert_num_queries(STEP_QUERIES):
            assert len(dispatch(runner_id="r1").jobs) == 3
    [(task, job_ids, event)] = sent
    assert (task, event) == ("webhooks.tasks.job_event", "job.started")
    assert sorted(job_ids) == sorted(str(job.pk) for job in hooked + own_url)


@pytest.mark.django_db
def test_claimed_jobs_come_back_complete_and_as_the_row_holds_them():
    user = make_user("complete", max_concurrent_jobs=10)
    workflow = make_workflow()
    node = make_node(max_queue=8)
    jobs = _queued(user, workflow, 3, webhook_url="https://example.com/x", model_files=[])
    lifecycle.transition(jobs[1].pk, from_status=S.QUEUED, to_status=S.CANCELLED)
    assignments = {job.pk: (node.pk, str(uuid.uuid4()), f"client-{n}") for n, job in enumerate(reversed(jobs))}
    claimed = lifecycle.claim(assignments, runner_id="r1", now=timezone.now())
    assert [job.pk for job in claimed] == [jobs[2].pk, jobs[0].pk]  # in the order asked, without the cancelled one
    fields = [field.attname for field in Job._meta.concrete_fields]
    for job in claimed:
        assert job.get_deferred_fields() == set()
        row = Job.objects.get(pk=job.pk)
        assert {name: getattr(job, name) for name in fields} == {name: getattr(row, name) for name in fields}
    assert claimed[0].status == S.RUNNING and claimed[0].started_at.tzinfo is not None


@pytest.mark.django_db
def test_without_returning_the_claim_reads_its_jobs_back(monkeypatch, django_assert_num_queries):
    monkeypatch.setattr("jobs.lifecycle.can_return_updated", lambda: False)
    user = make_user("fallback", max_concurrent_jobs=10)
    workflow = make_workflow()
    make_node(max_queue=8)
    _warm(user, workflow)
    _queued(user, workflow, 2)
    with django_assert_num_queries(STEP_QUERIES + 1):
        claimed = dispatch(runner_id="r1").jobs
    assert len(claimed) == 2 and all(job.get_deferred_fields() == set() for job in claimed)


@pytest.mark.django_db(transaction=True)
async def test_a_claimed_job_reaches_post_prompt_without_a_database_step(make_server, monkeypatch):
    server = await make_server()

    @sync_to_async
    def claim_one() -> Job:
        user = make_user("straight", max_concurrent_jobs=10)
        workflow = make_workflow()
        make_node(base_url=server.url, max_queue=1)
        _queued(user, workflow, 1)
        [job] = dispatch(runner_id="r1").jobs
        return job

    job = await claim_one()
    steps_before_send: list[str] = []
    steps_taken: list[str] = []
    submit = ComfyClient.submit_prompt

    async def noted_submit(self, graph, **kwargs):
        steps_before_send.extend(steps_taken)
        return await submit(self, graph, **kwargs)

    monkeypatch.setattr(ComfyClient, "submit_prompt", noted_submit)
    runner = Runner(runner_id="r1", health=False)
    database_step = runner.db

    def noted_db(fn, /, *args, **kwargs):
        steps_taken.append(fn.__name__)
        return database_step(fn, *args, **kwargs)

    runner.db = noted_db
    try:
        await JobFollower(runner, job).run(resume=False)
    finally:
        await runner.close()
    assert steps_before_send == [] and steps_taken == ["finish_and_present"]
    # A field or relation read lazily on the event loop would have raised SynchronousOnlyOperation
    # and ended the job in ERROR ("Internal error …").
    fresh = await Job.objects.aget(pk=job.pk)
    assert (fresh.status, fresh.error) == (S.DONE, "")
