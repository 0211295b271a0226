"""The bundled controlnet-canny workflow on a GPU server that lacks its checkpoint (issue 23).

ComfyUI answers 200, runs only the Canny edge preview and lists the checkpoint loader in
`node_errors`. The job must end in ERROR naming what failed, with the prompt taken off that
server, never DONE with the edge preview as its picture; on a server with the checkpoint
the same workflow is DONE with both of its outputs."""

from __future__ import annotations

import httpx
import pytest

from nodes.models import ComfyNode
from tests.factories import upload_example
from tests.harness import wait_for
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished
from tests.integration.test_masks_e2e import noisy_image

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def online(*nodes: ComfyNode) -> None:
    wait_for(
        lambda: all(ComfyNode.objects.get(pk=n.pk).status == "ONLINE" for n in nodes),
        timeout=30,
        what="the nodes to come online",
    )


def test_a_node_without_the_checkpoint_fails_the_job_and_one_with_it_completes_it(stack_factory, user_factory):
    """The node's model list says it has the checkpoint (read before the file was deleted, say):
    ComfyUI runs the prompt's other output only and lists the checkpoint in node_errors. The
    portal withdraws the prompt, drops the file from that node's inventory and sends the job to a
    node that has it."""
    # job_time: the partial prompt still runs when the portal withdraws it.
    stack = stack_factory(nodes=1, node_args={"cache_none": True, "no_default_models": True, "job_time": 3})
    lacking = stack.nodes[0]
    lacking.control(models={"controlnet": ["control_v11p_sd15_canny.pth"]})
    user_factory("alice")
    upload_example("controlnet-canny")
    first = ComfyNode.objects.create(name="lacking", base_url=lacking.url)
    online(first)
    wait_for(lambda: ComfyNode.objects.get(pk=first.pk).inventory_read_at, timeout=30, what="its model list")
    first = ComfyNode.objects.get(pk=first.pk)
    first.inventory = {**first.inventory, "checkpoints": ["v1-5-pruned-emaonly.safetensors"]}  # out of date
    first.save()
    api = HttpApi(stack.web_url, "alice")
    inputs = {"image": api.upload(noisy_image()), "prompt": "a lighthouse"}

    job_id = api.submit("controlnet-canny", inputs)["id"]
    requeued = wait_for(
        lambda: (lambda j: j if j["status"] == "QUEUED" and j["attempts"] == 1 else None)(api.job(job_id)),
        timeout=60,
        what="the job to be requeued",
    )
    assert "lacking no longer has checkpoints/v1-5-pruned-emaonly.safetensors" in requeued["error"]
    assert requeued["waiting_code"] == "missing_model" and requeued["outputs"] == []
    node = ComfyNode.objects.get(pk=first.pk)
    assert node.inventory["checkpoints"] == [] and node.inventory_stale
    queue = httpx.get(lacking.url + "/queue").json()
    assert queue["queue_running"] == [] and queue["queue_pending"] == []  # withdrawn (the job was requeued)
    history = wait_for(lambda: httpx.get(f"{lacking.url}/history").json(), timeout=10, what="the prompt to end")
    [entry] = history.values()
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"  # stopped, not run to its end

    complete = stack.add_node(no_default_models=False, job_time=0)
    online(ComfyNode.objects.create(name="complete", base_url=complete.url))
    done = finished(api, job_id)
    assert done["status"] == "DONE", done
    assert done["node"] == "complete" and len(done["outputs"]) == 2  # the picture and the edge preview
