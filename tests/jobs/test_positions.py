"""Queue positions: one query for a whole list, so that lists of jobs cost the same number of
queries however long the queue is (the jobs page, GET /api/jobs, the WebSocket's snapshot)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.positions import queue_position, queue_positions
from tests.conftest import communicator, make_user
from tests.factories import make_job, make_workflow
from tests.pages.conftest import logged_in, result_file

S = Job.Status


@pytest.mark.django_db
def test_the_positions_of_a_list_are_those_of_each_job_alone(alice, bob, outsider):
    workflow = make_workflow()
    owners = [alice, bob, alice, outsider, alice, bob, alice]
    jobs = [make_job(owner, workflow) for owner in owners]
    jobs.append(make_job(bob, workflow, status=S.RUNNING))
    same_moment = timezone.now() - timedelta(hours=1)  # ties: neither is ahead of the other
    twins = [make_job(outsider, workflow) for _ in range(2)]
    Job.objects.filter(pk__in=[j.pk for j in twins]).update(created_at=same_moment)
    jobs += [Job.objects.get(pk=j.pk) for j in twins]
    with CaptureQueriesContext(connection) as listed:
        positions = queue_positions(jobs)
    assert len(listed) == 1
    assert positions == {job.pk: queue_position(job) for job in jobs if job.status == S.QUEUED}
    # Alice's first job: one job of every other user may go first; her third: 2 of hers, 3 of Bob's (all he has
    # queued) and 3 of the outsider's.
    assert positions[jobs[0].pk] == 1 + 0 + 1 + 1
    assert positions[jobs[4].pk] == 1 + 2 + 2 + 3
    assert positions[twins[0].pk] == positions[twins[1].pk] == 1 + 0 + 1 + 1


@pytest.mark.django_db
def test_a_submitted_job_answers_with_the_position_it_then_has(alice, bob, outsider, alice_api):
    workflow = make_workflow()
    for owner in [alice, bob, bob, bob, alice, outsider]:
        make_job(owner, workflow)
    make_job(bob, workflow, status=S.RUNNING)
    response = alice_api.post("/api/jobs", {"workflow": workflow.slug, "inputs": {}})
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["id"])
    assert response.json()["position"] == queue_position(job) == 1 + 2 + 3 + 1  # 2 of hers, 3 of Bob's, 1


@pytest.mark.django_db
def test_a_list_without_queued_jobs_costs_no_query(alice, django_assert_num_queries):
    jobs = [make_job(alice, make_workflow(), status=S.DONE)]
    with django_assert_num_queries(0):
        assert queue_positions(jobs) == {}


def _queue(alice, bob, queued: int) -> None:
    """Alice: `queued` queued jobs and a finished one with a result; Bob: as many queued.
    Nobody else has queued jobs."""
    Job.objects.all().delete()
    workflow = make_workflow(f"queue-{queued}")
    result_file(make_job(alice, workflow, status=S.DONE))
    for _ in range(queued):
        make_job(alice, workflow)
        make_job(bob, workflow)


def _count(make_request) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        answer = make_request()
    return len(queries), answer


# A list costs: the jobs counted (for the pages), the page's ids (from the index), those jobs,
# their files, their positions, the farm for their waiting reasons (the active nodes: none
# here, so no slot count); plus
PARTIAL_QUERIES = 6 + 2  # the session and its user
PAGE_QUERIES = PARTIAL_QUERIES + 3 + 1  # the user menu's counts; the live cursor
API_QUERIES = 5 + 1  # the token's user
# The socket's own thread reads nothing: the token's user and the snapshot are read on the
# /ws/jobs/ threads (jobs.ws_threads; the snapshot's queries are counted in tests/jobs/test_resume.py).
SNAPSHOT_QUERIES = 0


@pytest.mark.django_db
@pytest.mark.parametrize("partial,expected", [({}, PAGE_QUERIES), ({"partial": "list"}, PARTIAL_QUERIES)])
def test_the_jobs_page_costs_the_same_queries_whatever_the_queue(partial, expected):
    counts = []
    for queued in (3, 30):
        alice, bob = make_user(f"alice{queued}"), make_user(f"bob{queued}")
        _queue(alice, bob, queued)
        client = logged_in(alice)
        headers = {"HTTP_HX_REQUEST": "true"} if partial else {}
        client.get(reverse("my_jobs"))  # the site's default limits are kept per process: read them now
        count, response = _count(lambda: client.get(reverse("my_jobs"), partial, **headers))
        newest_position = f"Position in queue: {2 * queued}<"  # her newest job: all of hers and Bob's go first
        assert response.status_code == 200 and newest_position in response.content.decode()
        counts.append(count)
    assert counts == [expected, expected]


@pytest.mark.django_db
def test_get_api_jobs_costs_the_same_queries_whatever_the_queue():
    from tests.conftest import Api, token_for

    counts = []
    for queued in (3, 30):
        alice, bob = make_user(f"alice{queued}"), make_user(f"bob{queued}")
        _queue(alice, bob, queued)
        api = Api(token_for(alice))
        count, response = _count(lambda: api.get("/api/jobs", page_size=200))
        items = response.json()["items"]
        assert len(items) == queued + 1
        assert sorted(j["position"] for j in items if j["status"] == "QUEUED") == list(range(2, 2 * queued + 1, 2))
        counts.append(count)
    assert counts == [API_QUERIES, API_QUERIES]


async def _snapshot(token: str, expected: int) -> list[dict]:
    comm = communicator(f"/ws/jobs/?token={token}")
    connected, _ = await comm.connect()
    assert connected
    messages = [await comm.receive_json_from(timeout=5) for _ in range(expected)]
    assert (await comm.receive_json_from(timeout=5))["type"] == "synced"
    assert await comm.receive_nothing(timeout=0.1)
    await comm.disconnect()
    return messages


@pytest.mark.django_db(transaction=True)
def test_the_websocket_snapshot_costs_the_same_queries_whatever_the_queue():
    """Run from a sync test: the consumer's database calls then come back to this thread, on
    the connection whose queries are counted."""
    from tests.conftest import token_for

    counts = []
    for queued in (3, 30):
        alice, bob = make_user(f"alice{queued}"), make_user(f"bob{queued}")
        _queue(alice, bob, queued)
        token = token_for(alice)
        count, messages = _count(lambda: async_to_sync(_snapshot)(token, queued))
        positions = sorted(m["job"]["position"] for m in messages)
        assert positions == list(range(2, 2 * queued + 1, 2))  # one of Bob's goes before each of hers
        counts.append(count)
    assert counts == [SNAPSHOT_QUERIES, SNAPSHOT_QUERIES]
