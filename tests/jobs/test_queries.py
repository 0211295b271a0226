"""The raw SQL statements (jobs/queries.py, accounts/queries.py), each alone. The suite runs
on SQLite and on PostgreSQL (DATABASE_URL): these are the tests that differ between them."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.utils import timezone

from accounts import queries as account_queries
from jobs import queries
from jobs.models import Job, JobFile, quota_day_start
from nodes.models import ComfyNode
from tests.conftest import PASSWORD, make_user
from tests.factories import make_job, make_node, make_workflow

S = Job.Status
pytestmark = pytest.mark.django_db


def _created(job: Job, when) -> Job:
    Job.objects.filter(pk=job.pk).update(created_at=when)
    return Job.objects.get(pk=job.pk)


def test_queue_and_quotas(alice, bob):
    workflow = make_workflow()
    yesterday = quota_day_start() - timedelta(hours=1)
    make_job(alice, workflow)
    _created(make_job(alice, workflow), yesterday)  # queued since yesterday: counts as queued only
    make_job(alice, workflow, status=S.DONE)  # today, finished: counts for today only
    _created(make_job(alice, workflow, status=S.DONE), yesterday)  # neither
    make_job(bob, workflow)
    make_job(bob, workflow)
    make_job(bob, workflow, status=S.DONE)  # someone else's finished job: counts nowhere
    queued, today, per_user, busy = queries.queue_and_quotas(alice.pk, quota_day_start())
    assert (queued, today, sorted(per_user), busy) == (2, 2, sorted([(alice.pk, 2), (bob.pk, 2)]), {})
    nobody = queries.queue_and_quotas(make_user("nobody").pk, quota_day_start())
    assert nobody[:2] == (0, 0) and sorted(nobody[2]) == sorted(per_user)


def test_lock_user_costs_nothing_where_the_database_has_no_row_locks(alice, django_assert_num_queries):
    if connection.features.has_select_for_update:
        pytest.skip("this database locks the row: see the next test")
    with django_assert_num_queries(0):
        queries.lock_user(alice.pk)


@pytest.mark.django_db(transaction=True)
def test_lock_user_holds_the_users_row_until_the_transaction_ends():
    if not connection.features.has_select_for_update:
        pytest.skip("row locks are a PostgreSQL feature; SQLite serializes writers")
    alice = make_user("alice")
    locked, attempts = threading.Event(), []

    def another_submit():
        try:
            locked.wait(10)
            with transaction.atomic():
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '200ms'")
                    queries.lock_user(alice.pk)
                    attempts.append("locked")
                except OperationalError:
                    attempts.append("waited")
        finally:
            connections.close_all()

    other = threading.Thread(target=another_submit)
    other.start()
    with transaction.atomic():
        queries.lock_user(alice.pk)
        locked.set()
        other.join(10)
    assert attempts == ["waited"]
    with transaction.atomic():  # released at commit
        queries.lock_user(alice.pk)


def test_lock_eligible_nodes_and_any_eligible_node():
    low = make_node(priority=1)
    high = make_node(priority=5, foreign_queue=2)
    make_node(status=ComfyNode.Status.OFFLINE)
    make_node(is_active=False)
    make_node(remove_when_drained=True)
    with transaction.atomic():
        nodes = queries.lock_eligible_nodes()
    assert [n.pk for n in nodes] == [high.pk, low.pk]  # by priority
    assert (nodes[0].priority, nodes[0].max_queue, nodes[0].foreign_queue) == (5, high.max_queue, 2)
    high.save()  # what tells dispatch to read the node's row again
    assert queries.lock_eligible_nodes()[0].updated_at != nodes[0].updated_at
    assert queries.any_eligible_node()
    ComfyNode.objects.filter(pk__in=[low.pk, high.pk]).update(status=ComfyNode.Status.OFFLINE)
    assert queries.lock_eligible_nodes() == [] and not queries.any_eligible_node()


def test_busy_slots_counts_running_jobs_until_their_node_finished_them(alice):
    workflow = make_workflow()
    busy, idle = make_node(), make_node()
    make_job(alice, workflow, status=S.RUNNING, node=busy)
    make_job(alice, workflow, status=S.RUNNING, node=busy)
    make_job(alice, workflow, status=S.RUNNING, node=busy, node_finished_at=timezone.now())  # slot free again
    make_job(alice, workflow, status=S.DONE, node=idle)
    make_job(alice, workflow)
    assert queries.busy_slots([busy.pk, idle.pk]) == {busy.pk: 2}
    # a submit reads them with its quotas, in one statement
    together = queries.queue_and_quotas(alice.pk, quota_day_start(), [busy.pk, idle.pk])
    assert together == (1, 5, [(alice.pk, 1)], {busy.pk: 2})


def _waiting(per_user: int = 16) -> queries.WaitingQueue:
    now = timezone.now()
    return queries.waiting_queue(per_user, quota_day_start(), now - timedelta(days=1))


def test_waiting_queue_names_the_users_not_blocked_with_queued_jobs(alice, bob, outsider, settings):
    workflow = make_workflow()
    alice.priority, alice.daily_job_limit = 3, 7
    alice.save()
    make_job(alice, workflow)
    make_job(alice, workflow)
    bob.is_blocked = True
    bob.save()
    make_job(bob, workflow)
    make_job(outsider, workflow, status=S.RUNNING)
    queue = _waiting()
    assert list(queue.users) == list(queue.heads) == [alice.pk]
    waiting = queue.users[alice.pk]
    assert (waiting.priority, waiting.effective_daily_job_limit) == (3, 7)
    assert waiting.effective_max_concurrent_jobs == settings.DEFAULT_MAX_CONCURRENT_JOBS
    assert queue.loads == {}  # nothing of hers runs or started


def test_waiting_queue_gives_each_users_load(alice, bob, outsider):
    workflow = make_workflow()
    now = timezone.now()
    for user in (alice, bob, outsider):
        make_job(user, workflow)
    make_job(alice, workflow, status=S.RUNNING, started_at=now - timedelta(minutes=5))
    make_job(alice, workflow, status=S.DONE, started_at=now - timedelta(minutes=1))
    make_job(alice, workflow, status=S.DONE, started_at=now - timedelta(days=3))  # long ago: not counted
    make_job(bob, workflow, status=S.RUNNING)  # running, never started (a test row): running only
    outsider.is_blocked = True
    outsider.save()
    queue = _waiting()
    assert set(queue.users) == {alice.pk, bob.pk}
    today = sum(1 for minutes in (5, 1) if now - timedelta(minutes=minutes) >= quota_day_start())
    alices = queue.loads[alice.pk]
    assert (alices.running, alices.started_today) == (1, today)
    assert abs((alices.last_served - (now - timedelta(minutes=1))).total_seconds()) < 1
    assert queue.loads[bob.pk] == queries.UserLoad(1, 0, None)


def test_waiting_queue_gives_each_users_first_jobs_by_priority_then_age(alice, bob, outsider):
    workflow = make_workflow()
    start = timezone.now() - timedelta(minutes=10)
    old = _created(make_job(alice, workflow), start)
    urgent = _created(make_job(alice, workflow, priority=5), start + timedelta(minutes=2))
    _created(make_job(alice, workflow), start + timedelta(minutes=1))  # third: beyond per_user
    theirs = make_job(bob, workflow)
    make_job(bob, workflow, status=S.RUNNING)
    outsider.is_blocked = True
    outsider.save()
    make_job(outsider, workflow)  # blocked: not read
    heads = _waiting(per_user=2).heads
    assert {user: [uuid.UUID(str(job.pk)) for job in jobs] for user, jobs in heads.items()} == {
        alice.pk: [urgent.pk, old.pk],
        bob.pk: [theirs.pk],
    }
    first = heads[alice.pk][0]
    assert (first.user_id, first.workflow_id, first.priority) == (alice.pk, workflow.pk, 5)


def test_queued_per_user_counts_everyones_queue_and_the_owners_earlier_jobs(alice, bob):
    workflow = make_workflow()
    start = timezone.now() - timedelta(minutes=10)
    mine = [_created(make_job(alice, workflow), start + timedelta(minutes=i)) for i in range(3)]
    make_job(alice, workflow, status=S.RUNNING)
    make_job(bob, workflow)
    make_job(bob, workflow)
    rows = {user: (count, ahead) for user, count, ahead in queries.queued_per_user(alice.pk, mine[2].created_at)}
    assert rows == {alice.pk: (3, 2), bob.pk: (2, 0)}


def test_insert_file_stores_the_row_with_its_bytes_counted_or_neither(alice):
    record = JobFile(owner=alice, kind=JobFile.Kind.IMAGE, file="uploads/x.png", content_type="image/png", size=300)
    queries.insert_file(record)
    assert JobFile.objects.get(pk=record.pk).size == 300 and not record._state.adding
    twice = JobFile(pk=record.pk, owner=alice, kind=JobFile.Kind.IMAGE, file="uploads/y.png", size=200)
    with pytest.raises(IntegrityError), transaction.atomic():
        queries.insert_file(twice)
    alice.refresh_from_db()
    assert alice.storage_used == 300


def _fields(record: JobFile) -> dict:
    return {field.attname: getattr(record, field.attname) for field in JobFile._meta.concrete_fields}


def test_files_are_read_as_the_orm_reads_them(alice):
    job = make_job(alice, make_workflow(), status=S.DONE, shareable=True)
    result = JobFile.objects.create(owner=alice, job=job, kind=JobFile.Kind.RESULT, file="r.png", duration=1.5)
    upload = JobFile.objects.create(owner=alice, kind=JobFile.Kind.IMAGE, file="u.png", size=3)
    viewed = queries.file_to_view(str(result.pk))
    assert _fields(viewed) == _fields(JobFile.objects.get(pk=result.pk)) and not viewed._state.adding
    assert (viewed.job_status, bool(viewed.job_shareable), viewed.workflow_slug, viewed.result_count) == (
        S.DONE,
        True,
        "tiny",
        1,
    )
    alone = queries.file_to_view(upload.pk)
    assert _fields(alone) == _fields(JobFile.objects.get(pk=upload.pk)) and alone.job_status is None
    assert queries.file_to_view("not-an-id") is None and queries.file_to_view(uuid.uuid4()) is None
    found = queries.files_by_id([str(result.pk), str(upload.pk), "nope"])
    assert {pk: _fields(record) for pk, record in found.items()} == {
        str(f.pk): _fields(f) for f in JobFile.objects.all()
    }


def test_active_user_reads_an_active_user_blocked_or_not(alice, bob, outsider):
    bob.is_blocked = True
    bob.save()
    outsider.is_active = False
    outsider.save()
    found = account_queries.active_user(alice.pk)
    assert found.pk == alice.pk and found.username == "alice" and found.check_password(PASSWORD)
    assert account_queries.active_user(bob.pk).is_blocked
    assert account_queries.active_user(outsider.pk) is None
    assert account_queries.active_user(10**9) is None


def test_active_user_is_the_orm_s_user_field_for_field(alice):
    found = account_queries.active_user(alice.pk)
    expected = type(alice).objects.get(pk=alice.pk)
    fields = [field.attname for field in type(alice)._meta.concrete_fields]
    assert {name: getattr(found, name) for name in fields} == {name: getattr(expected, name) for name in fields}
    # Loaded from the database, as the ORM's would be: a save updates the row, never inserts.
    assert not found._state.adding and found._state.db == "default"
    found.first_name = "Alice"
    found.save(update_fields=["first_name"])
    assert type(alice).objects.get(pk=alice.pk).first_name == "Alice"


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING", "DONE"])
def test_a_job_to_present_is_presented_as_the_orm_s_job(alice, status):
    """GET /api/jobs/{id} reads the job with plain SQL (jobs.queries.job_to_present); what the
    client gets must be what the ORM's read of it gives: a queued job's waiting reason, the node
    of a running one, a finished one's results (its uploaded input is no output)."""
    from jobs.files import store_result, store_upload
    from jobs.presenters import present_job
    from jobs.services import get_job_for_user
    from tests.jobs.test_jobs_api import png_bytes

    workflow = make_workflow(class_types=["LoadImage", "SaveImage", "NoNodeHasThis"])
    node = make_node("gpu-1", status=ComfyNode.Status.ONLINE)
    upload = store_upload(owner=alice, data=png_bytes(), kind="image")
    job = make_job(alice, workflow, status=status, inputs={"image": str(upload.pk)}, model_files=["a.safetensors"])
    if status != "QUEUED":
        Job.objects.filter(pk=job.pk).update(node=node, started_at=timezone.now(), progress=0.5, seq=3)
    JobFile.objects.filter(pk=upload.pk).update(job=job)
    if status == "DONE":
        for name in ("out_00002_.png", "out_00001_.png"):
            store_result(job=job, data=png_bytes(color=(1, 2, len(name))), source_ref=name)

    read, results = queries.job_to_present(job.pk)
    presented = present_job(read, results=results)
    assert presented == present_job(get_job_for_user(alice, job.pk))
    assert presented["status"] == status and presented["workflow"] == workflow.slug
    assert presented["node"] == (None if status == "QUEUED" else "gpu-1")
    assert len(presented["outputs"]) == (2 if status == "DONE" else 0)
    if status == "QUEUED":
        assert presented["waiting_code"] and "NoNodeHasThis" in presented["waiting_reason"]
    # The graph, the spec and the node's long lists stay unread (deferred) until asked for.
    assert {"graph", "spec"} <= read.workflow.get_deferred_fields()
    assert read.node is None or "class_types" in read.node.get_deferred_fields()
    assert queries.job_to_present(uuid.uuid4()) is None and queries.job_to_present("not-an-id") is None
