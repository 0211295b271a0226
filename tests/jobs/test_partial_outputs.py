"""A job is DONE only when every output its spec requires produced an image.

ComfyUI answers a prompt whose other outputs fail validation with 200 and `node_errors`, runs
the rest and calls that a success (errors.jsonl, "a 200 that carries node_errors"). The runner
runs against in-process test ComfyUI servers here: one lacking the checkpoint, one with it."""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from jobs import transfer
from jobs.follower import JobFollower
from jobs.models import Job, JobFile
from jobs.runner import Runner
from nodes.comfy.client import ComfyClient
from tests.conftest import make_user
from tests.factories import make_node
from tests.testcomfy.helpers import sampler_graph
from tests.testcomfy.replay import load
from workflows.models import Workflow

S = Job.Status

# A picture that needs a checkpoint (output 9) and a model-free one beside it (output 21).
GRAPH = {
    **sampler_graph(steps=2),
    "20": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 255}},
    "21": {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "beside"}},
}
GRAPH["9"] = {**GRAPH["9"], "_meta": {"title": "Picture"}}


def two_output_spec(*, picture_optional: bool = False) -> dict:
    picture = {"node": "9", "type": "image"}
    if picture_optional:
        picture["optional"] = True
    return {
        "spec_version": "1.0",
        "slug": "two-outputs",
        "name": "Two outputs",
        "version": "1.0",
        "inputs": [],
        "outputs": [picture, {"node": "21", "type": "image"}],
    }


def running_job(base_url: str, *, picture_optional: bool = False) -> Job:
    workflow = Workflow.objects.create(
        slug=f"two-outputs-{uuid.uuid4().hex[:6]}",
        name="Two outputs",
        version="1.0",
        graph=GRAPH,
        spec=two_output_spec(picture_optional=picture_optional),
        class_types=sorted({n["class_type"] for n in GRAPH.values()}),
    )
    job = Job.objects.create(
        user=make_user(f"u{uuid.uuid4().hex[:8]}"),
        workflow=workflow,
        status=S.RUNNING,
        node=make_node(base_url=base_url),
        started_at=timezone.now(),
        prompt_id=str(uuid.uuid4()),
        client_id="comfyportal-partial",
    )
    return Job.objects.select_related("workflow", "node", "user").get(pk=job.pk)  # as the runner holds it


async def run(job: Job, *, resume: bool = False) -> Job:
    runner = Runner(health=False)
    try:
        await JobFollower(runner, job).run(resume=resume)
    finally:
        await runner.close()
    return await sync_to_async(Job.objects.get)(pk=job.pk)


def result_nodes(job: Job) -> list[str]:
    """Which output node each stored result came from (its source file's name prefix)."""
    refs = JobFile.objects.filter(job=job, kind=JobFile.Kind.RESULT).values_list("source_ref", flat=True)
    return sorted(ref.rsplit("/", 1)[-1].split("_")[0] for ref in refs)


async def finished_elsewhere(url: str, job: Job) -> None:
    """The job's prompt ran to its end on the node while nobody followed it (a runner that died
    between sending it and reading the answer)."""
    async with ComfyClient(url) as client:
        await client.submit_prompt(GRAPH, client_id=job.client_id, prompt_id=job.prompt_id)
        for _ in range(200):
            if await client.history(job.prompt_id) is not None:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the prompt did not finish")


@pytest.mark.django_db(transaction=True)
async def test_a_partly_accepted_prompt_ends_in_error_with_the_summary_and_leaves_the_node(
    make_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    server = await make_server(default_models=False, job_time=2, cache_none=True)
    job = await sync_to_async(running_job)(server.url)
    ended = await run(job)
    assert ended.status == S.ERROR
    assert ended.error.startswith("ComfyUI rejected the workflow — node 4 (CheckpointLoaderSimple)")
    assert "ckpt_name" in ended.error and "sd_xl_base_1.0.safetensors" in ended.error
    assert await sync_to_async(result_nodes)(ended) == []
    async with ComfyClient(server.url) as client:
        assert job.prompt_id not in (await client.queue()).prompt_ids
        for _ in range(100):  # interrupted: it ends at its next node
            entry = await client.history(job.prompt_id)
            if entry is not None:
                break
            await asyncio.sleep(0.05)
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert "21" not in entry["outputs"]


@pytest.mark.django_db(transaction=True)
async def test_the_same_workflow_on_a_node_that_has_everything_is_done_with_both_outputs(
    make_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    server = await make_server(cache_none=True)
    ended = await run(await sync_to_async(running_job)(server.url))
    assert ended.status == S.DONE and ended.error == ""
    assert await sync_to_async(result_nodes)(ended) == ["beside", "sampled"]


@pytest.mark.django_db(transaction=True)
async def test_a_finished_prompt_without_a_required_output_ends_in_error_and_keeps_what_it_made(
    make_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    server = await make_server(default_models=False, cache_none=True)
    job = await sync_to_async(running_job)(server.url)
    await finished_elsewhere(server.url, job)
    ended = await run(job, resume=True)
    assert ended.status == S.ERROR
    assert ended.error.startswith('Incomplete result: output node 9 "Picture" (SaveImage) produced no image.')
    assert await sync_to_async(result_nodes)(ended) == ["beside"]  # kept, as partial results


@pytest.mark.django_db(transaction=True)
async def test_a_finished_prompt_without_an_optional_output_is_done(make_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    server = await make_server(default_models=False, cache_none=True)
    job = await sync_to_async(running_job)(server.url, picture_optional=True)
    await finished_elsewhere(server.url, job)
    ended = await run(job, resume=True)
    assert ended.status == S.DONE and ended.error == ""
    assert await sync_to_async(result_nodes)(ended) == ["beside"]


# The pure check, on the history entry the real server wrote for a partly valid prompt.
def recorded_entry() -> dict:
    _, events = load("errors.jsonl")
    entry = next(e for e in events if e.get("dir") == "http" and e["path"] == "/history/<prompt_id:1>")
    return copy.deepcopy(entry["response"]["<prompt_id:1>"])


def test_the_recorded_partial_run_misses_its_dropped_output():
    spec = {"outputs": [{"node": "4", "type": "image"}, {"node": "6", "type": "image"}]}
    assert transfer.missing_outputs(spec, recorded_entry()) == ["6"]
    spec["outputs"][1]["optional"] = True
    assert transfer.missing_outputs(spec, recorded_entry()) == []


def test_the_missing_outputs_error_names_each_node_with_its_title_and_class():
    graph = recorded_entry()["prompt"][2]
    graph["6"]["_meta"] = {"title": "Scaled"}
    assert transfer.missing_outputs_error(graph, ["6"]).startswith(
        'Incomplete result: output node 6 "Scaled" (SaveImage) produced no image.'
    )
    assert "node 9 (?)" in transfer.missing_outputs_error(graph, ["4", "9"])
