"""Catch-ups of one user's sockets served together (jobs.catchup_batch, catchup.catch_up_many):
each socket gets exactly its own missed changes, as if served alone, for one read."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import catchup, catchup_batch, lifecycle, steps, ws_threads
from jobs.models import Job
from tests.conftest import make_user
from tests.factories import make_job, make_workflow

S = Job.Status
pytestmark = pytest.mark.django_db(transaction=True)


def _history(user, workflow):
    """Five jobs changed one after another: cursors 1…7 each miss a different tail."""
    jobs = [make_job(user, workflow, status=S.RUNNING) for _ in range(4)]
    queued = make_job(user, workflow)
    for job in jobs[:3]:
        steps.finish(job.pk, status=S.DONE, message="")  # seqs 1, 2, 3
    steps.write_running_state({str(jobs[3].pk): (0.5, "")})  # 4
    lifecycle.record_change(jobs[0].pk, user_id=user.pk, priority=1)  # 5: the first job again, now newest
    return jobs, queued


def _shape(result: catchup.CatchUp):
    return [(j["id"], j["seq"], j["status"]) for j in result.jobs], result.synced_message()


REQUESTS = [(None, ""), (0, ""), (1, ""), (3, ""), (4, ""), (5, ""), (9, ""), (None, "since: bad")]


def test_each_socket_of_a_batch_gets_what_it_would_get_alone():
    alice, bob = make_user("alice"), make_user("bob")
    workflow = make_workflow()
    _history(alice, workflow)
    make_job(bob, workflow)

    alone = [_shape(catchup.catch_up(alice.pk, since, malformed=bad)) for since, bad in REQUESTS]
    together = [_shape(result) for result in catchup.catch_up_many(alice.pk, REQUESTS)]
    assert together == alone
    missed_since_3 = alone[3][0]
    assert [seq for _, seq, _ in missed_since_3] == [4, 5]  # in order, each once, none of bob's
    assert alone[3][1]["resumed"] and not alone[3][1]["reset"]
    assert alone[6][1]["reset"] and alone[7][1]["detail"] == "since: bad"  # ahead; malformed


def test_a_batch_costs_the_queries_of_one_catch_up():
    alice = make_user("alice")
    _history(alice, make_workflow())
    with CaptureQueriesContext(connection) as one:
        catchup.catch_up(alice.pk, 0)
    with CaptureQueriesContext(connection) as many:
        catchup.catch_up_many(alice.pk, [(0, ""), (2, ""), (4, ""), (5, "")] * 5)
    assert len(many) == len(one)


def test_cursors_too_old_for_the_limit_get_the_snapshot_and_the_others_their_changes(settings):
    settings.WS_RESUME_MAX_JOBS = 2
    alice = make_user("alice")
    _history(alice, make_workflow())  # changed after 1: four jobs; after 3: two
    requests = [(1, ""), (3, ""), (2, "")]
    alone = [_shape(catchup.catch_up(alice.pk, since)) for since, _ in requests]
    assert [shape[1]["reset"] for shape in alone] == [True, False, True]
    assert [_shape(result) for result in catchup.catch_up_many(alice.pk, requests)] == alone


def test_sockets_that_wait_together_are_served_by_one_read_each_with_its_own_changes(monkeypatch):
    alice, bob = make_user("alice"), make_user("bob")
    workflow = make_workflow()
    _history(alice, workflow)
    make_job(bob, workflow)
    first_read = threading.Event()
    release = threading.Event()
    calls = []
    real = catchup.catch_up_many

    def recorded(user_id, requests):
        calls.append((user_id, list(requests)))
        first_read.set()
        release.wait(10)
        return real(user_id, requests)

    monkeypatch.setattr(catchup_batch, "catch_up_many", recorded)

    async def connect_together():
        batches = catchup_batch.CatchUpBatches()
        blocker = asyncio.ensure_future(batches.catch_up(bob.pk, None))  # holds a thread
        await asyncio.to_thread(first_read.wait, 10)
        # WS_CATCH_UP_THREADS is 2: one more user's read would start at once; fill that thread too.
        other = asyncio.ensure_future(batches.catch_up(bob.pk + 1000, None))
        await asyncio.sleep(0.2)
        waiting = [asyncio.ensure_future(batches.catch_up(alice.pk, since)) for since in (None, 1, 3, 5)]
        await asyncio.sleep(0.2)
        release.set()
        await blocker, other
        return await asyncio.gather(*waiting)

    deliveries = async_to_sync(connect_together)()
    assert [c for c in calls if c[0] == alice.pk] == [(alice.pk, [(None, ""), (1, ""), (3, ""), (5, "")])]
    decoded = [[json.loads(text) for text in d.messages] for d in deliveries]
    for delivery, messages, since in zip(deliveries, decoded, (None, 1, 3, 5)):
        assert messages[-1] == delivery.catch_up.synced_message() and messages[-1]["cursor"] == 5
        jobs = [m["job"] for m in messages[:-1]]
        assert all(m["type"] == "job" for m in messages[:-1])
        if since is None:
            assert {j["status"] for j in jobs} == {S.RUNNING, S.QUEUED} and not messages[-1]["resumed"]
        else:
            assert [j["seq"] for j in jobs] == [s for s in (2, 3, 4, 5) if s > since]
    # A later socket is not joined to a batch already read: it gets a read of its own.
    monkeypatch.setattr(catchup_batch, "catch_up_many", real)
    assert async_to_sync(catchup_batch.CatchUpBatches().catch_up)(alice.pk, 4).catch_up.jobs[0]["seq"] == 5


def test_handshakes_presenting_the_same_token_at_once_share_one_login():
    reads = []
    release = threading.Event()

    def login(token):
        reads.append(token)
        release.wait(5)
        return f"user of {token}"

    async def together():
        same = [asyncio.ensure_future(ws_threads.log_in_once(("token", "t1"), login, "t1")) for _ in range(5)]
        other = asyncio.ensure_future(ws_threads.log_in_once(("token", "t2"), login, "t2"))
        await asyncio.sleep(0.2)
        release.set()
        users = await asyncio.gather(*same, other)
        later = await ws_threads.log_in_once(("token", "t1"), login, "t1")  # not kept: read again
        return users, later

    users, later = async_to_sync(together)()
    assert users == ["user of t1"] * 5 + ["user of t2"]
    assert sorted(reads) == ["t1", "t1", "t2"] and later == "user of t1"
