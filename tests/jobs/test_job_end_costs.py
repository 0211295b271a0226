"""What a job's ending costs its runner's database thread (steps.finish_and_present): its
statements, all in one transaction, and no wait for Redis, whose metrics a writer thread sends
once the ending has committed."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from accounts.models import User
from core.redis_client import shared_redis
from jobs import cursors, files, metrics, steps
from jobs.models import Job, JobFile
from tests.factories import make_job, make_node, make_workflow
from tests.jobs.test_steps import png

# Committed for real: the metrics and webhooks of an ending wait for its commit.
pytestmark = pytest.mark.django_db(transaction=True)
S = Job.Status


@pytest.fixture
def running(alice):
    workflow, node = make_workflow(), make_node()

    def make() -> Job:
        job = make_job(alice, workflow, status=S.RUNNING, node=node, started_at=timezone.now())
        return Job.objects.select_related("workflow", "node", "user").get(pk=job.pk)  # as the runner holds it

    # The first ending of a process reads settings that are kept for a while after.
    steps.finish_and_present(make(), status=S.DONE, message="")
    assert metrics.flush()  # and its metrics are sent
    return make


def finished_count(settings) -> float:
    stored = shared_redis().hget(f"{settings.REDIS_PREFIX}:metrics:{metrics.JOBS_FINISHED.name}", '["DONE", "tiny"]')
    return float(stored or 0)


@pytest.fixture
def statements():
    """Each statement run: (its first word, whether it ran inside a transaction)."""
    seen = []

    def note(execute, sql, params, many, context):
        seen.append((sql.split()[0].upper(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        yield seen


def test_a_done_job_with_one_result_ends_in_one_transaction_of_three_or_four_statements(running, statements, alice):
    job = running()
    statements.clear()
    event = steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    assert event["job"]["status"] == S.DONE and len(event["job"]["outputs"]) == 1
    # the result's row; its owner's byte count; the event number and the status, in one statement
    # where the database can (a data-modifying WITH): one commit, no savepoint
    begun = [statement for statement in statements if statement[0] != "BEGIN"]  # SQLite's BEGIN IMMEDIATE
    if connection.vendor == "postgresql":
        assert begun == [("INSERT", True), ("UPDATE", True), ("WITH", True)]
    else:
        assert begun == [("INSERT", True), ("UPDATE", True), ("INSERT", True), ("UPDATE", True)]
    assert Job.objects.get(pk=job.pk).seq == event["job"]["seq"] == cursors.current(alice.pk)
    assert User.objects.get(pk=alice.pk).storage_used == JobFile.objects.get(job=job).size


def test_an_ending_counts_its_metrics_once_after_commit_from_the_writer_thread(running, settings, monkeypatch):
    job, before = running(), finished_count(settings)
    senders = []
    send = metrics._send

    def noting_send(updates):
        senders.append((threading.current_thread().name, len(updates)))
        send(updates)

    monkeypatch.setattr(metrics, "_send", noting_send)
    steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    assert metrics.flush()
    assert senders == [("job-metrics", 1)]
    assert finished_count(settings) == before + 1


def test_an_ending_rolled_back_stores_nothing_and_counts_nothing(running, settings, monkeypatch):
    job, before = running(), finished_count(settings)
    finish = steps.finish

    def finish_then_fail(*args, **kwargs):
        finish(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(steps, "finish", finish_then_fail)
    written = []
    monkeypatch.setattr(files, "_result_record", _noting(files._result_record, written))
    with pytest.raises(RuntimeError):
        steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    assert metrics.flush()
    assert finished_count(settings) == before
    assert Job.objects.get(pk=job.pk).status == S.RUNNING and not JobFile.objects.filter(job=job).exists()
    assert written and not Path(written[0].file.path).exists()  # no row points at it: not kept


def test_redis_away_does_not_fail_the_ending(running, monkeypatch, caplog):
    job = running()
    monkeypatch.setattr(metrics, "shared_redis", lambda: redis.Redis(port=1, socket_connect_timeout=0.2))
    with caplog.at_level(logging.WARNING, logger="comfyportal.jobs"):
        event = steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
        assert metrics.flush()
    assert event["job"]["status"] == S.DONE and Job.objects.get(pk=job.pk).status == S.DONE
    assert "could not update job metrics" in caplog.text


def test_results_stored_already_are_skipped_and_counted_once(running, alice):
    job = running()
    first = files.store_result(job=job, data=png(), source_ref="output//a.png")
    used = User.objects.get(pk=alice.pk).storage_used
    stored = files.store_results(job=job, results=[(png(), "output//a.png"), (b"\x00" * 10, "output//b.bin")])
    assert [record.source_ref for record in stored] == ["output//b.bin"]
    assert User.objects.get(pk=alice.pk).storage_used == used + 10
    assert JobFile.objects.filter(job=job).count() == 2 and JobFile.objects.get(pk=first.pk).file == first.file
    # A partial collection: the event is read back from the row, with both files.
    event = steps.finish_and_present(job, status=S.DONE, message="", results=[(png(), "output//a.png")])
    assert len(event["job"]["outputs"]) == 2


def _noting(function, seen: list):
    def noted(*args, **kwargs):
        result = function(*args, **kwargs)
        seen.append(result)
        return result

    return noted
