"""dispatch: eligibility, capacity, fairness, and safety with concurrent dispatchers."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from jobs import lifecycle
from jobs.models import Job
from jobs.positions import queue_position
from jobs.scheduler import dispatch
from tests.conftest import make_user
from tests.factories import make_job, make_node, make_workflow

pytestmark = pytest.mark.django_db
S = Job.Status


def test_assigns_up_to_max_queue_per_node(alice):
    workflow = make_workflow()
    make_node(max_queue=2)
    make_node(max_queue=1)
    for _ in range(5):
        make_job(alice, workflow)
    alice.max_concurrent_jobs = 10
    alice.save()
    claimed = dispatch(runner_id="r1").jobs
    assert len(claimed) == 3
    per_node = Counter(job.node.name for job in claimed)
    assert sorted(per_node.values()) == [1, 2]
    assert all(j.status == S.RUNNING and j.prompt_id and j.client_id.startswith("comfyportal-") for j in claimed)
    assert Job.objects.filter(status=S.QUEUED).count() == 2
    assert dispatch(runner_id="r1").jobs == []  # every slot is taken


def test_dispatch_reports_free_slots_left_and_frees_finished_slots(alice):
    """The runner skips wake-ups for new jobs while free_slots is 0; a prompt its node finished
    frees the slot in the same step that fills it again."""
    workflow = make_workflow()
    make_node(max_queue=2)
    assert dispatch(runner_id="r1").free_slots == 2  # nothing queued: both slots stay free
    for _ in range(3):
        make_job(alice, workflow)
    alice.max_concurrent_jobs = 10
    alice.save()
    first = dispatch(runner_id="r1")
    assert len(first.jobs) == 2 and first.free_slots == 0
    blocked = dispatch(runner_id="r1")
    assert blocked.jobs == [] and blocked.free_slots == 0
    again = dispatch(runner_id="r1", node_finished=[str(first.jobs[0].pk)])
    assert len(again.jobs) == 1 and again.free_slots == 0
    assert Job.objects.get(pk=first.jobs[0].pk).node_finished_at is not None
    assert Job.objects.get(pk=first.jobs[1].pk).node_finished_at is None


def test_skips_offline_inactive_draining_and_foreign_load(alice):
    workflow = make_workflow()
    make_node(status="OFFLINE")
    make_node(is_active=False)
    make_node(remove_when_drained=True)
    busy = make_node(max_queue=2, foreign_queue=2)  # someone else's prompts fill it
    make_job(alice, workflow)
    assert dispatch(runner_id="r1").jobs == []
    busy.foreign_queue = 1
    busy.save()
    assert [j.node_id for j in dispatch(runner_id="r1").jobs] == [busy.pk]


def test_job_goes_only_to_a_node_that_has_its_classes(alice):
    workflow = make_workflow(class_types=["EmptyImage", "KSampler", "SaveImage"])
    make_node(class_types=["EmptyImage", "SaveImage"])
    able = make_node(class_types=["EmptyImage", "KSampler", "SaveImage", "VAEDecode"])
    make_job(alice, workflow)
    claimed = dispatch(runner_id="r1").jobs
    assert [j.node_id for j in claimed] == [able.pk]


def test_a_node_that_learns_new_classes_gets_the_jobs_needing_them(alice):
    """Dispatch keeps each node's class list between steps; a saved change must show at once."""
    workflow = make_workflow(class_types=["EmptyImage", "KSampler", "SaveImage"])
    node = make_node(class_types=["EmptyImage", "SaveImage"])
    make_job(alice, workflow)
    assert dispatch(runner_id="r1").jobs == []
    node.class_types = ["EmptyImage", "KSampler", "SaveImage"]
    node.save()
    assert [j.node_id for j in dispatch(runner_id="r1").jobs] == [node.pk]


def test_node_priority_then_least_loaded(alice):
    workflow = make_workflow()
    low = make_node(priority=0, max_queue=4)
    high = make_node(priority=5, max_queue=1)
    alice.max_concurrent_jobs = 10
    alice.save()
    for _ in range(3):
        make_job(alice, workflow)
    claimed = dispatch(runner_id="r1").jobs
    assert claimed[0].node_id == high.pk or Counter(j.node_id for j in claimed) == {high.pk: 1, low.pk: 2}
    assert Counter(j.node_id for j in claimed) == {high.pk: 1, low.pk: 2}


def test_fair_between_users(alice, bob):
    """Alice's 50 queued jobs do not delay Bob's single job by more than one slot."""
    workflow = make_workflow()
    node = make_node(max_queue=1)
    alice.max_concurrent_jobs = 100
    alice.save()
    for _ in range(50):
        make_job(alice, workflow)
    bobs = make_job(bob, workflow)
    first = dispatch(runner_id="r1").jobs
    assert len(first) == 1
    # Whoever went first, Bob's job runs no later than the second slot.
    if first[0].user_id != bob.pk:
        assert lifecycle.transition(first[0].pk, from_status=S.RUNNING, to_status=S.DONE)
        second = dispatch(runner_id="r1").jobs
        assert [j.pk for j in second] == [bobs.pk]
    assert node.jobs.filter(user=bob).exists()


def test_user_priority_weights_the_share(alice, bob):
    workflow = make_workflow()
    make_node(max_queue=4)
    alice.priority, alice.max_concurrent_jobs = 3, 10
    alice.save()
    bob.max_concurrent_jobs = 10
    bob.save()
    for _ in range(10):
        make_job(alice, workflow)
        make_job(bob, workflow)
    claimed = dispatch(runner_id="r1").jobs
    assert Counter(j.user_id for j in claimed) == {alice.pk: 3, bob.pk: 1}


def test_job_priority_then_age_within_a_user(alice):
    workflow = make_workflow()
    make_node(max_queue=1)
    make_job(alice, workflow)
    urgent = make_job(alice, workflow, priority=5)
    assert [j.pk for j in dispatch(runner_id="r1").jobs] == [urgent.pk]


def test_max_concurrent_jobs_is_enforced_at_dispatch(alice):
    workflow = make_workflow()
    make_node(max_queue=5)
    alice.max_concurrent_jobs = 2
    alice.save()
    for _ in range(4):
        make_job(alice, workflow)
    assert len(dispatch(runner_id="r1").jobs) == 2
    assert dispatch(runner_id="r1").jobs == []


def test_blocked_users_jobs_wait(alice):
    workflow = make_workflow()
    make_node()
    make_job(alice, workflow)
    alice.is_blocked = True
    alice.save()
    assert dispatch(runner_id="r1").jobs == []


def test_queue_position_is_round_robin(alice, bob):
    workflow = make_workflow()
    a = [make_job(alice, workflow) for _ in range(3)]
    b = make_job(bob, workflow)
    assert queue_position(a[0]) == 1 + 0 + 1  # Bob's first job may go before it
    assert queue_position(b) == 2  # one of Alice's, then Bob's
    assert queue_position(a[2]) == 1 + 2 + 1


def test_illegal_transition_is_an_error(alice):
    job = make_job(alice, make_workflow(), status=S.DONE)
    with pytest.raises(lifecycle.IllegalTransition):
        lifecycle.transition(job.pk, from_status=S.DONE, to_status=S.RUNNING)
    assert lifecycle.transition(job.pk, from_status=S.QUEUED, to_status=S.RUNNING) is False


def test_claim_moves_each_job_to_its_own_node_and_ids_and_leaves_a_job_no_longer_queued(alice):
    workflow = make_workflow()
    first, second = make_node(), make_node()
    queued, other, cancelled = (make_job(alice, workflow) for _ in range(3))
    lifecycle.transition(cancelled.pk, from_status=S.QUEUED, to_status=S.CANCELLED)
    lifecycle.claim(
        {
            queued.pk: (first.pk, "p-1", "c-1"),
            other.pk: (second.pk, "p-2", "c-2"),
            cancelled.pk: (first.pk, "p-3", "c-3"),
        },
        runner_id="r1",
        now=timezone.now(),
    )
    rows = {j.pk: j for j in Job.objects.all()}
    assert (rows[queued.pk].status, rows[queued.pk].node_id, rows[queued.pk].prompt_id, rows[queued.pk].client_id) == (
        S.RUNNING,
        first.pk,
        "p-1",
        "c-1",
    )
    assert (rows[other.pk].status, rows[other.pk].node_id, rows[other.pk].prompt_id) == (S.RUNNING, second.pk, "p-2")
    assert rows[queued.pk].runner_id == "r1" and rows[queued.pk].started_at is not None
    assert (rows[cancelled.pk].status, rows[cancelled.pk].node_id, rows[cancelled.pk].prompt_id) == (
        S.CANCELLED,
        None,
        "",
    )


def test_a_job_cancelled_while_dispatch_decides_is_not_sent_and_its_slot_stays_free(alice, monkeypatch):
    from jobs import queries

    workflow = make_workflow()
    make_node(max_queue=2)
    kept, cancelled = make_job(alice, workflow), make_job(alice, workflow)
    alice.max_concurrent_jobs = 10
    alice.save()
    read_queue = queries.waiting_queue

    def cancel_after_reading(*args):
        queue = read_queue(*args)
        lifecycle.transition(cancelled.pk, from_status=S.QUEUED, to_status=S.CANCELLED)
        return queue

    monkeypatch.setattr(queries, "waiting_queue", cancel_after_reading)
    result = dispatch(runner_id="r1")
    assert [j.pk for j in result.jobs] == [kept.pk] and result.free_slots == 1
    assert Job.objects.get(pk=cancelled.pk).status == S.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_never_double_assign_or_overfill():
    """Many dispatchers at once (threads with their own connections): each job once, no node over max_queue."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks with skip_locked are a PostgreSQL feature; SQLite serializes writers")
    users = [make_user(f"user{i}", max_concurrent_jobs=100) for i in range(5)]
    workflow = make_workflow()
    nodes = [make_node(max_queue=3) for _ in range(6)]
    for i in range(120):
        make_job(users[i % 5], workflow)
    claimed: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(n: int):
        barrier.wait()
        try:
            for _ in range(5):
                got = dispatch(runner_id=f"r{n}").jobs
                with lock:
                    claimed.extend(j.pk for j in got)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 18
    running = Counter(Job.objects.filter(status=S.RUNNING).values_list("node_id", flat=True))
    assert all(running[n.pk] <= n.max_queue for n in nodes)
    assert sum(running.values()) == 18


@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_that_finds_every_node_locked_by_another_gives_no_verdict_on_free_slots():
    """What the runner's "all slots full" flag relies on: 0 nodes seen is not a full pool."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks with skip_locked are a PostgreSQL feature; SQLite serializes writers")
    from nodes.models import ComfyNode

    alice = make_user("alice2", max_concurrent_jobs=10)
    workflow = make_workflow()
    make_node(max_queue=2)
    make_node(max_queue=2)
    make_job(alice, workflow)
    locked, release, results = threading.Event(), threading.Event(), []

    def peer():  # another runner, in the middle of its own dispatch step
        try:
            with transaction.atomic():
                list(ComfyNode.objects.select_for_update())
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    def contender():
        try:
            results.append(dispatch(runner_id="r2"))
        finally:
            connections.close_all()

    holder = threading.Thread(target=peer)
    holder.start()
    assert locked.wait(10)
    contender_thread = threading.Thread(target=contender)
    contender_thread.start()
    contender_thread.join(10)
    release.set()
    holder.join(10)
    assert results[0].jobs == [] and results[0].free_slots == 0 and results[0].nodes_seen == 0
    assert results[0].contended  # so its runner looks again shortly
    after = dispatch(runner_id="r2")  # the peer is done: this one sees both nodes
    assert len(after.jobs) == 1 and after.free_slots == 3 and after.nodes_seen == 2 and not after.contended
    ComfyNode.objects.update(status=ComfyNode.Status.OFFLINE)
    assert not dispatch(runner_id="r2").contended  # no node online: nothing to retry for


def test_daily_limit_is_enforced_at_dispatch(alice):
    workflow = make_workflow()
    make_node(max_queue=5)
    alice.max_concurrent_jobs = 10
    for _ in range(3):
        make_job(alice, workflow)
    alice.daily_job_limit = 2  # lowered by an admin after the jobs were queued
    alice.save()
    assert len(dispatch(runner_id="r1").jobs) == 2
    assert dispatch(runner_id="r1").jobs == []


def test_dispatch_says_whether_it_left_a_runnable_job_queued(alice, bob):
    """A runner skips the step a freed slot would wake when the last step left nothing to take."""
    workflow = make_workflow()
    make_node(max_queue=3)
    assert dispatch(runner_id="r1").queue_empty  # nothing was waiting
    make_job(alice, workflow)
    took_the_only_one = dispatch(runner_id="r1")
    assert len(took_the_only_one.jobs) == 1 and took_the_only_one.queue_empty
    alice.max_concurrent_jobs = 1
    alice.save()
    make_job(alice, workflow)  # waits for alice's running job to end: that frees a slot for it
    make_job(bob, workflow)
    bobs_taken = dispatch(runner_id="r1")
    assert [job.user_id for job in bobs_taken.jobs] == [bob.pk] and not bobs_taken.queue_empty
    for _ in range(3):
        make_job(bob, workflow)  # more than the free slot: some stay queued
    assert not dispatch(runner_id="r1").queue_empty
