"""Issue 22: an input file goes to a node once. Named by its content, a picture the runner has put
on that node already is not sent again for the next job; a node that lost it (restarted with a
fresh input folder) refuses the prompt, and the runner sends the file and the prompt again."""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from PIL import Image

from jobs import files, transfer
from jobs.follower import JobFollower
from jobs.models import Job, JobFile
from jobs.runner import Runner
from nodes.comfy.client import ComfyClient
from tests.conftest import make_user
from tests.factories import make_node, upload_example
from workflows.models import Workflow
from workflows.prompt import validate_inputs

pytestmark = pytest.mark.django_db(transaction=True)
S = Job.Status


def picture(seed: int = 5) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG")
    return buf.getvalue()


@sync_to_async
def running_job(node, user, data: bytes) -> Job:
    """A job just claimed for `node`, its picture uploaded anew (another JobFile each time)."""
    workflow = Workflow.objects.filter(slug="image-filters").first() or upload_example("image-filters")
    upload = files.store_upload(owner=user, data=data, kind="image")
    job = Job.objects.create(
        user=user,
        workflow=workflow,
        inputs=validate_inputs(workflow.spec, {"image": str(upload.pk)}),
        status=S.RUNNING,
        node=node,
        runner_id="runner-test",
        started_at=timezone.now(),
        prompt_id=str(uuid.uuid4()),
        client_id=f"comfyportal-{uuid.uuid4().hex[:8]}",
    )
    return Job.objects.select_related("workflow", "node", "user").get(pk=job.pk)


@sync_to_async
def ended(job: Job) -> tuple[str, str, int]:
    fresh = Job.objects.get(pk=job.pk)
    return fresh.status, fresh.error, JobFile.objects.filter(job=job, kind=JobFile.Kind.RESULT).count()


@pytest.fixture
def counted_uploads(monkeypatch) -> list[str]:
    names: list[str] = []
    upload = ComfyClient.upload_image

    async def counted(self, data, filename, **kwargs):
        names.append(filename)
        return await upload(self, data, filename, **kwargs)

    monkeypatch.setattr(ComfyClient, "upload_image", counted)
    return names


async def test_a_picture_sent_again_is_not_uploaded_twice_and_a_node_that_lost_it_gets_it_again(
    make_server, counted_uploads, monkeypatch
):
    server = await make_server(cache_none=True)
    node = await sync_to_async(make_node)(base_url=server.url, class_types=[])
    user = await sync_to_async(make_user)("reuser")
    runner = Runner(runner_id="runner-test", health=False)
    monkeypatch.setattr(runner, "send_event", lambda *args: asyncio.sleep(0))
    try:
        first = await running_job(node, user, picture())
        await JobFollower(runner, first).run(resume=False)
        second = await running_job(node, user, picture())  # the same picture, uploaded again
        await JobFollower(runner, second).run(resume=False)
        assert await ended(first) == (S.DONE, "", 1) and await ended(second) == (S.DONE, "", 1)
        assert len(counted_uploads) == 1 and counted_uploads[0].startswith("cp_")

        other = await running_job(node, user, picture(seed=6))  # another picture: sent
        await JobFollower(runner, other).run(resume=False)
        assert await ended(other) == (S.DONE, "", 1) and len(counted_uploads) == 2

        # The node restarts with an empty input folder: the next job's prompt is refused for the
        # missing file, the runner sends it and the prompt again, and the job is done.
        shutil.rmtree(Path(server.data_dir) / "input")
        (Path(server.data_dir) / "input").mkdir()
        third = await running_job(node, user, picture())
        await JobFollower(runner, third).run(resume=False)
        assert await ended(third) == (S.DONE, "", 1)
        assert counted_uploads[2:] == [counted_uploads[0]]  # sent again, once
    finally:
        await runner.close()


async def test_a_prompt_refused_for_something_else_is_not_sent_again(make_server, counted_uploads, monkeypatch):
    """Only a refusal naming a file the node was assumed to hold is retried."""
    server = await make_server(cache_none=True)
    node = await sync_to_async(make_node)(base_url=server.url, class_types=[])
    user = await sync_to_async(make_user)("refused")
    runner = Runner(runner_id="runner-test", health=False)
    monkeypatch.setattr(runner, "send_event", lambda *args: asyncio.sleep(0))
    try:
        job = await running_job(node, user, picture())
        transfer.inputs_on(runner.client_for(job.node)).add("cp_someone_else.png")
        errors = {"2": {"errors": [{"type": "value_bigger_than_max", "details": "blur_radius"}]}}
        assert transfer.lost_inputs(runner.client_for(job.node), ["cp_someone_else.png"], errors) == []
        assert "cp_someone_else.png" in transfer.inputs_on(runner.client_for(job.node)).names
    finally:
        await runner.close()


async def test_a_claimed_job_brings_its_input_files_and_its_follower_reads_no_more(
    make_server, counted_uploads, monkeypatch
):
    """The dispatch step reads the claimed jobs' input files (one query for all of them): the
    follower sends the job without a database step of its own, and reads the picture's bytes
    only when the node lacks it."""
    from jobs import steps
    from jobs.scheduler import dispatch

    server = await make_server(cache_none=True)
    user = await sync_to_async(make_user)("claimed")

    @sync_to_async
    def queued_and_claimed():
        workflow = Workflow.objects.filter(slug="image-filters").first() or upload_example("image-filters")
        make_node(base_url=server.url, class_types=workflow.class_types, max_queue=2)
        for _ in range(2):
            upload = files.store_upload(owner=user, data=picture(), kind="image")
            Job.objects.create(
                user=user, workflow=workflow, inputs=validate_inputs(workflow.spec, {"image": str(upload.pk)})
            )
        return dispatch(runner_id="runner-test").jobs

    claimed = await queued_and_claimed()
    assert len(claimed) == 2 and all(set(job.input_records) == {"image"} for job in claimed)

    def no_step(*args, **kwargs):
        raise AssertionError("the follower read its inputs again")

    monkeypatch.setattr(steps, "inputs_to_send", no_step)
    read = []
    original_read = files.read_bytes
    monkeypatch.setattr(files, "read_bytes", lambda record: read.append(record.pk) or original_read(record))
    runner = Runner(runner_id="runner-test", health=False)
    monkeypatch.setattr(runner, "send_event", lambda *args: asyncio.sleep(0))
    try:
        for job in claimed:
            await JobFollower(runner, job).run(resume=False)
            assert (await ended(job))[:2] == (S.DONE, "")
    finally:
        await runner.close()
    assert len(counted_uploads) == 1 and read == [claimed[0].input_records["image"].pk]
