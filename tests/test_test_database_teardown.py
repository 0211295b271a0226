"""The test run leaves no connection open, so PostgreSQL can drop the test database at the end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.db import connection

from accounts.models import User
from tests.conftest import close_worker_thread_connections

REPO = Path(__file__).resolve().parent.parent
# An async test whose ORM calls run in asgiref's shared worker thread (it left a session open).
ASYNC_ORM_TEST = "tests/jobs/test_follower.py::test_a_job_that_finished_on_its_node_is_collected_without_running_again"


def worker_thread_is_connected() -> bool:
    return SyncToAsync.single_thread_executor.submit(lambda: connection.connection is not None).result()


@pytest.mark.django_db(transaction=True)
def test_the_worker_threads_connection_is_closed_at_teardown():
    asyncio.run(sync_to_async(User.objects.count)())  # outside async_to_sync: the shared worker thread
    assert worker_thread_is_connected()
    close_worker_thread_connections()
    assert not worker_thread_is_connected()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL refuses to drop a used database"
)
def test_a_postgresql_run_drops_its_test_database():
    url = os.environ["DATABASE_URL"]
    name = dj_database_url.parse(url)["NAME"] + "_teardown"  # its own database, beside this run's
    server = url.rsplit("/", 1)[0]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", ASYNC_ORM_TEST, "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": f"{server}/{name}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        left = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [f"test_{name}"]).fetchall()
        if left:  # so that a failure here does not fail the next run too
            admin.execute(f'DROP DATABASE "test_{name}"')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "being accessed by other users" not in result.stdout + result.stderr
    assert not left, f"test_{name} was left behind"
