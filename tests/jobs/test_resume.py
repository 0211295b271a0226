"""/ws/jobs/ resume: a client that reconnects with its last cursor gets exactly what it missed.

Sync tests (transaction=True): the database is changed between sockets, and each socket's
conversation runs in one async_to_sync call.
"""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import catchup, cursors, lifecycle, services, steps
from jobs.models import Job
from tests.conftest import communicator, make_user, token_for
from tests.factories import make_job, make_workflow

S = Job.Status
pytestmark = pytest.mark.django_db(transaction=True)


async def _converse(path: str, *, send: dict | None = None) -> tuple[list[dict], dict]:
    """Connect, (send a message,) read up to the `synced` message; return (job messages, synced)."""
    comm = communicator(path)
    connected, _ = await comm.connect()
    assert connected
    try:
        jobs, synced = await _until_synced(comm)
        if send is not None:
            await comm.send_json_to(send)
            jobs, synced = await _until_synced(comm)
        assert await comm.receive_nothing(timeout=0.1), "nothing after `synced` but live events"
    finally:
        await comm.disconnect()
    return jobs, synced


async def _until_synced(comm) -> tuple[list[dict], dict]:
    jobs = []
    while True:
        message = await comm.receive_json_from(timeout=5)
        if message["type"] == "synced":
            return jobs, message
        assert message["type"] == "job"
        jobs.append(message["job"])


def connect(user, since=None, **kwargs) -> tuple[list[dict], dict]:
    query = f"?token={user.token}" + ("" if since is None else f"&since={since}")
    return async_to_sync(_converse)(f"/ws/jobs/{query}", **kwargs)


@pytest.fixture
def people():
    alice, bob = make_user("alice"), make_user("bob")
    alice.token, bob.token = token_for(alice), token_for(bob)
    return alice, bob


def test_a_resume_delivers_exactly_the_changes_missed_once_each_in_order(people):
    alice, bob = people
    workflow = make_workflow()
    done, cancelled, failed, progressed = (
        make_job(alice, workflow, status=S.RUNNING),
        make_job(alice, workflow),
        make_job(alice, workflow, status=S.RUNNING),
        make_job(alice, workflow, status=S.RUNNING),
    )
    untouched = make_job(alice, workflow, status=S.RUNNING)
    bobs = make_job(bob, workflow, status=S.RUNNING)
    steps.write_running_state({str(progressed.pk): (0.1, "early")})  # seen before the gap

    snapshot, synced = connect(alice)
    assert {j["id"] for j in snapshot} == {str(j.pk) for j in (done, cancelled, failed, progressed, untouched)}
    assert synced == {"type": "synced", "cursor": 1, "resumed": False, "reset": False}

    # The gap: the tab is away while jobs progress and end (and bob's too).
    steps.write_running_state({str(progressed.pk): (0.25, "")})
    steps.finish(done.pk, status=S.DONE, message="")
    services.cancel_job(job=cancelled)
    steps.finish(failed.pk, status=S.ERROR, message="ComfyUI error: boom")
    steps.write_running_state({str(progressed.pk): (0.75, "step 3/4"), str(bobs.pk): (0.5, "")})
    steps.finish(bobs.pk, status=S.DONE, message="")

    missed, synced = connect(alice, since=1)
    assert [(j["id"], j["status"]) for j in missed] == [
        (str(done.pk), S.DONE),
        (str(cancelled.pk), S.CANCELLED),
        (str(failed.pk), S.ERROR),
        (str(progressed.pk), S.RUNNING),
    ]
    assert missed[2]["error"] == "ComfyUI error: boom"
    assert (missed[3]["progress"], missed[3]["progress_text"]) == (0.75, "step 3/4")
    assert [j["seq"] for j in missed] == sorted(j["seq"] for j in missed)
    assert synced == {"type": "synced", "cursor": missed[-1]["seq"], "resumed": True, "reset": False}

    # Resumed from the newest cursor: nothing was missed.
    assert connect(alice, since=synced["cursor"]) == ([], {**synced, "resumed": True})
    # The same through a first message instead of the query string.
    missed_again, _ = connect(alice, send={"type": "resume", "since": 1})
    assert [j["id"] for j in missed_again] == [j["id"] for j in missed]


def test_every_kind_of_change_takes_the_next_number_of_its_owners_sequence(people):
    alice, bob = people
    workflow = make_workflow()
    first = services.submit_job(user=alice, workflow_slug=workflow.slug, inputs={})
    second = services.submit_job(user=alice, workflow_slug=workflow.slug, inputs={})
    bobs = services.submit_job(user=bob, workflow_slug=workflow.slug, inputs={})
    assert (first.seq, second.seq, bobs.seq) == (1, 2, 1)  # per user

    from nodes.models import ComfyNode

    node = ComfyNode.objects.create(name="gpu", base_url="http://127.0.0.1:1")
    lifecycle.claim(
        {first.pk: (node.pk, "p1", "c1"), second.pk: (node.pk, "p2", "c2"), bobs.pk: (node.pk, "p3", "c3")},
        runner_id="r",
        now=first.created_at,
    )
    seqs = dict(Job.objects.values_list("pk", "seq"))
    assert sorted([seqs[first.pk], seqs[second.pk]]) == [3, 4] and seqs[bobs.pk] == 2
    services.cancel_job(job=Job.objects.get(pk=first.pk))  # RUNNING: a cancel request
    assert Job.objects.get(pk=first.pk).seq == 5
    steps.write_running_state({str(second.pk): (0.5, "")})
    assert Job.objects.get(pk=second.pk).seq == 6
    assert steps.finish(second.pk, status=S.DONE, message="")
    assert Job.objects.get(pk=second.pk).seq == 7
    assert (cursors.current(alice.pk), cursors.current(bob.pk)) == (7, 2)


def test_a_cursor_of_another_user_or_from_the_future_gets_a_snapshot_of_ones_own_jobs(people):
    alice, bob = people
    workflow = make_workflow()
    alices = make_job(alice, workflow)
    bob_jobs = [make_job(bob, workflow, status=S.RUNNING) for _ in range(5)]
    for job in bob_jobs:
        steps.finish(job.pk, status=S.DONE, message="")  # bob's counter: 5, alice's: 0
    _, bob_synced = connect(bob)
    assert bob_synced["cursor"] == 5

    # Bob's cursor presented by alice is ahead of her sequence: refused, with her snapshot.
    jobs, synced = connect(alice, since=bob_synced["cursor"])
    assert [j["id"] for j in jobs] == [str(alices.pk)]
    assert synced == {"type": "synced", "cursor": 0, "resumed": False, "reset": True}

    # A small number is a valid cursor of anyone's: it selects only the presenter's own jobs.
    steps.write_running_state({})
    lifecycle.transition(alices.pk, from_status=S.QUEUED, to_status=S.CANCELLED)
    jobs, synced = connect(alice, since=0)
    assert [j["id"] for j in jobs] == [str(alices.pk)] and synced["resumed"]
    jobs, _ = connect(bob, since=1)
    assert {j["id"] for j in jobs} == {str(j.pk) for j in bob_jobs[1:]}


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "1e3"])
def test_a_malformed_cursor_gets_a_snapshot_and_says_why(people, since):
    alice, _ = people
    job = make_job(alice, make_workflow())
    jobs, synced = connect(alice, since=since)
    assert [j["id"] for j in jobs] == [str(job.pk)]
    assert synced["reset"] is True and synced["resumed"] is False
    assert synced["detail"].startswith("since: must be a whole number")


def test_a_cursor_too_old_gets_a_snapshot(people, settings):
    settings.WS_RESUME_MAX_JOBS = 2
    alice, _ = people
    workflow = make_workflow()
    ended = [make_job(alice, workflow, status=S.RUNNING) for _ in range(3)]
    active = make_job(alice, workflow)
    for job in ended:
        steps.finish(job.pk, status=S.ERROR, message="x")
    jobs, synced = connect(alice, since=0)
    assert [j["id"] for j in jobs] == [str(active.pk)]
    assert synced == {"type": "synced", "cursor": 3, "resumed": False, "reset": True}
    jobs, synced = connect(alice, since=1)  # two changes since: within the limit
    assert [j["id"] for j in jobs] == [str(j.pk) for j in ended[1:]] and synced["resumed"]


@pytest.mark.parametrize("since", [None, 0])
def test_catching_up_costs_the_same_few_queries_however_many_jobs(people, since):
    """The user's counter, the jobs, their files, the queue positions, the farm (for waiting
    reasons): never a query per job."""
    alice, bob = people
    counts = []
    for many in (2, 20):
        Job.objects.all().delete()
        workflow = make_workflow(f"w{many}")
        for _ in range(many):
            make_job(bob, workflow)
            queued = make_job(alice, workflow)
            running = make_job(alice, workflow, status=S.RUNNING)
            steps.write_running_state({str(running.pk): (0.5, "")})
            lifecycle.record_change(queued.pk, user_id=alice.pk, priority=1)
        with CaptureQueriesContext(connection) as queries:
            result = catchup.catch_up(alice.pk, since)
        assert len(result.jobs) == 2 * many if since is None else many * 2
        assert any(j["position"] for j in result.jobs)
        counts.append(len(queries))
    assert counts == [5, 5]


def test_a_resume_with_nothing_missed_costs_one_query(people, django_assert_num_queries):
    alice, _ = people
    running = make_job(alice, make_workflow(), status=S.RUNNING)
    steps.write_running_state({str(running.pk): (0.5, "")})
    with django_assert_num_queries(1):
        result = catchup.catch_up(alice.pk, 1)
    assert (result.jobs, result.cursor, result.resumed, result.reset) == ([], 1, True, False)


def test_the_socket_is_accepted_before_the_database_is_read(people, monkeypatch):
    """A thousand tabs reconnecting at once must not time out in the handshake behind each
    other's snapshots: the accept goes out first."""
    alice, _ = people
    release = threading.Event()
    real = catchup.catch_up_many

    def slow_catch_up(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr("jobs.catchup_batch.catch_up_many", slow_catch_up)

    async def talk():
        comm = communicator(f"/ws/jobs/?token={alice.token}")
        connected, _ = await comm.connect(timeout=3)
        accepted_while_reading = connected and not release.is_set()
        release.set()
        _, synced = await _until_synced(comm)
        await comm.disconnect()
        return accepted_while_reading, synced

    accepted_while_reading, synced = async_to_sync(talk)()
    assert accepted_while_reading
    assert synced["type"] == "synced"


def test_a_page_socket_logs_in_with_the_session_cookie_and_not_with_a_stale_one(people):
    from django.test import Client

    from tests.conftest import PASSWORD, WS_ORIGIN

    alice, _ = people
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    async def open_with_cookie():
        comm = communicator("/ws/jobs/", headers=[*WS_ORIGIN, *cookie])
        connected, code = await comm.connect()
        synced = (await _until_synced(comm))[1] if connected else None
        await comm.disconnect()
        return connected, code, synced

    connected, _, synced = async_to_sync(open_with_cookie)()
    assert connected and synced["type"] == "synced"
    alice.set_password("another-password-456")  # the session's hash no longer matches
    alice.save()
    connected, code, _ = async_to_sync(open_with_cookie)()
    assert not connected and code == 4401
