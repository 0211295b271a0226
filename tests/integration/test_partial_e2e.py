"""The bundled controlnet-canny workflow on a GPU server that lacks its checkpoint (issue 23).

ComfyUI answers 200, runs only the Canny edge preview and lists the checkpoint loader in
`node_errors`. The job must end in ERROR naming what failed, with the prompt taken off that
server, never DONE with the edge preview as its picture; on a server with the checkpoint
the same workflow is DONE with both of its outputs."""

from __future__ import annotations

import httpx
import pytest

from jobs.models import Job
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
    # job_time: the partial prompt still runs when the portal withdraws it.
    stack = stack_factory(nodes=1, node_args={"cache_none": True, "no_default_models": True, "job_time": 3})
    lacking = stack.nodes[0]
    lacking.control(models={"controlnet": ["control_v11p_sd15_canny.pth"]})
    user_factory("alice")
    upload_example("controlnet-canny")
    first = ComfyNode.objects.create(name="lacking", base_url=lacking.url)
    online(first)
    api = HttpApi(stack.web_url, "alice")
    inputs = {"image": api.upload(noisy_image()), "prompt": "a lighthouse"}

    failed = finished(api, api.submit("controlnet-canny", inputs)["id"])
    assert failed["status"] == "ERROR", failed
    assert failed["error"].startswith("ComfyUI rejected the workflow — node 4 (CheckpointLoaderSimple)")
    assert "ckpt_name" in failed["error"] and failed["outputs"] == []
    prompt_id = Job.objects.get(pk=failed["id"]).prompt_id
    queue = httpx.get(lacking.url + "/queue").json()
    assert prompt_id not in str(queue)
    entry = wait_for(
        lambda: httpx.get(f"{lacking.url}/history/{prompt_id}").json().get(prompt_id),
        timeout=10,
        what="the withdrawn prompt to end",
    )
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"  # stopped, not run to its end

    ComfyNode.objects.filter(pk=first.pk).update(is_active=False)
    complete = stack.add_node(no_default_models=False, job_time=0)
    online(ComfyNode.objects.create(name="complete", base_url=complete.url))
    done = finished(api, api.submit("controlnet-canny", {**inputs, "image": api.upload(noisy_image())})["id"])
    assert done["status"] == "DONE", done
    assert done["node"] == "complete" and len(done["outputs"]) == 2  # the picture and the edge preview
