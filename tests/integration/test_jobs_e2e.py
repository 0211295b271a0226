"""Jobs end to end: real daphne, qcluster and test ComfyUI nodes over real sockets."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from jobs.models import Job
from nodes.models import ComfyNode
from tests.factories import make_workflow
from tests.harness import wait_for
from tests.integration.conftest import HttpApi

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def register(stack, **fields):
    """Add the stack's nodes and wait until health checks have seen them all ONLINE."""
    nodes = [ComfyNode.objects.create(name=f"n{i}", base_url=node.url, **fields) for i, node in enumerate(stack.nodes)]
    wait_for(
        lambda: ComfyNode.objects.filter(status="ONLINE").count() == len(nodes),
        timeout=30,
        what="the nodes to come online",
    )
    return nodes


def finished(api: HttpApi, job_id: str, timeout: float = 60) -> dict:
    return wait_for(
        lambda: (lambda j: j if j["status"] in ("DONE", "ERROR", "CANCELLED") else None)(api.job(job_id)),
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to finish",
    )


def test_job_runs_and_its_output_is_downloadable(stack_factory, user_factory):
    stack = stack_factory(nodes=1)
    user_factory("alice")
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    job = api.submit("tiny", {"width": 32, "color": 0x00FF00})
    done = finished(api, job["id"])
    assert done["status"] == "DONE", done
    assert done["node"] == "n0" and done["progress"] == 1.0
    [output] = done["outputs"]
    data = api.http.get(output["url"]).content
    image = Image.open(io.BytesIO(data))
    assert image.size == (32, 48)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 255)  # green inverted
    assert Job.objects.get(pk=job["id"]).files.count() == 1


def ws_events(stack, api: HttpApi, *, until, timeout: float = 60) -> list[dict]:
    """Collect /ws/jobs/ messages until `until(messages)` is true."""
    import json
    import time

    from websockets.sync.client import connect

    url = stack.web_url.replace("http://", "ws://") + f"/ws/jobs/?token={api.access}"
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    with connect(url, open_timeout=10) as socket:
        while time.monotonic() < deadline and not until(messages):
            try:
                messages.append(json.loads(socket.recv(timeout=1)))
            except TimeoutError:
                continue
    return messages


def test_progress_reaches_the_users_websocket(stack_factory, user_factory):
    import threading

    stack = stack_factory(nodes=1, node_args={"job_time": 2, "cache_none": True})
    user_factory("alice")
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    box: dict = {}

    def listen():
        box["events"] = ws_events(
            stack, api, until=lambda ms: any(m.get("job", {}).get("status") == "DONE" for m in ms)
        )

    listener = threading.Thread(target=listen)
    listener.start()
    import time

    time.sleep(1.0)  # the socket is connected before the job starts
    job = api.submit("tiny")
    listener.join(70)
    events = [m["job"] for m in box["events"] if m.get("type") == "job" and m["job"]["id"] == job["id"]]
    progress = [e["progress"] for e in events if e.get("event") == "progress"]
    assert progress and any(0 < p < 1 for p in progress), events
    assert progress == sorted(progress)  # never goes back
    assert events[-1]["status"] == "DONE" and events[-1]["outputs"]


def test_node_killed_mid_job_then_job_completes_on_another_node(stack_factory, user_factory):
    stack = stack_factory(nodes=2, node_args={"job_time": 3, "cache_none": True})
    user_factory("alice")
    make_workflow()
    first, second = register(stack)
    ComfyNode.objects.filter(pk=first.pk).update(priority=10)  # the job goes to the first node
    api = HttpApi(stack.web_url, "alice")
    job = api.submit("tiny")
    wait_for(
        lambda: api.job(job["id"])["status"] == "RUNNING" and api.job(job["id"])["progress"] > 0,
        timeout=30,
        what="the job to run on the first node",
    )
    assert api.job(job["id"])["node"] == first.name
    stack.nodes[0].kill()
    done = finished(api, job["id"])
    assert done["status"] == "DONE", done
    assert done["node"] == second.name
    assert done["attempts"] == 1
    assert ComfyNode.objects.get(pk=first.pk).status == "OFFLINE"


def test_only_node_dies_job_waits_and_runs_when_it_returns(stack_factory, user_factory):
    stack = stack_factory(nodes=1, node_args={"job_time": 3, "cache_none": True})
    user_factory("alice")
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    job = api.submit("tiny")
    wait_for(lambda: api.job(job["id"])["status"] == "RUNNING", timeout=30, what="the job to start")
    stack.nodes[0].kill()
    wait_for(lambda: api.job(job["id"])["status"] == "QUEUED", timeout=30, what="the job to be queued again")
    import time

    time.sleep(3)
    assert api.job(job["id"])["status"] == "QUEUED"  # nowhere to run: it waits
    stack.nodes[0].start()
    done = finished(api, job["id"])
    assert done["status"] == "DONE" and done["attempts"] == 1


def test_worker_killed_mid_job_ends_done_exactly_once(stack_factory, user_factory):
    import httpx

    stack = stack_factory(nodes=1, node_args={"job_time": 6, "cache_none": True})
    user_factory("alice")
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    job = api.submit("tiny")
    wait_for(lambda: api.job(job["id"])["progress"] > 0, timeout=30, what="the job to run")
    stack.kill_worker(0)
    stack.start_worker(0)
    stack.start_runners()
    done = finished(api, job["id"], timeout=90)
    assert done["status"] == "DONE", done
    assert done["attempts"] == 0 and len(done["outputs"]) == 1
    history = httpx.get(stack.nodes[0].url + "/history").json()
    assert len(history) == 1  # the node ran the prompt once


def test_execution_error_ends_in_error_with_a_readable_message(stack_factory, user_factory):
    stack = stack_factory(nodes=1, node_args={"execution_error": 1, "cache_none": True})
    user_factory("alice")
    make_workflow()
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    done = finished(api, api.submit("tiny")["id"])
    assert done["status"] == "ERROR"
    assert done["error"].startswith("ComfyUI error: node")
    assert "Traceback" not in done["error"]


def test_validation_400_ends_in_error_naming_the_node(stack_factory, user_factory):
    from workflows.models import Workflow

    stack = stack_factory(nodes=1)
    user_factory("alice")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "not-on-the-node.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    spec = {
        "spec_version": "1.0",
        "slug": "broken",
        "name": "Broken",
        "version": "1.0",
        "inputs": [],
        "outputs": [{"node": "2", "type": "image"}],
    }
    Workflow.objects.create(
        slug="broken", name="Broken", version="1.0", graph=graph, spec=spec, class_types=["LoadImage", "SaveImage"]
    )
    register(stack)
    api = HttpApi(stack.web_url, "alice")
    done = finished(api, api.submit("broken")["id"])
    assert done["status"] == "ERROR"
    assert "ComfyUI rejected the workflow" in done["error"] and "node 1 (LoadImage)" in done["error"]


def test_cancel_queued_and_running(stack_factory, user_factory):
    import httpx

    stack = stack_factory(nodes=1, node_args={"job_time": 20, "cache_none": True})
    user = user_factory("alice")
    user.max_concurrent_jobs = 1
    user.save()
    make_workflow()
    register(stack, max_queue=1)
    api = HttpApi(stack.web_url, "alice")
    running = api.submit("tiny")
    queued = api.submit("tiny")
    wait_for(lambda: api.job(running["id"])["progress"] > 0, timeout=30, what="the first job to run")
    assert api.http.post(f"/api/jobs/{queued['id']}/cancel").json()["status"] == "CANCELLED"
    assert api.http.post(f"/api/jobs/{running['id']}/cancel").json()["cancel_requested"] is True
    done = finished(api, running["id"], timeout=20)
    assert done["status"] == "CANCELLED"
    queue = httpx.get(stack.nodes[0].url + "/queue").json()
    assert queue["queue_running"] == [] and queue["queue_pending"] == []


def test_fairness_with_real_workers(stack_factory, user_factory):
    """A's 50 queued jobs delay B's single job by at most one job slot."""
    stack = stack_factory(nodes=1, node_args={"job_time": 0.3, "cache_none": True})
    a = user_factory("usera")
    a.max_concurrent_jobs = 100
    a.save()
    user_factory("userb")
    make_workflow()
    register(stack, max_queue=1)
    api_a, api_b = HttpApi(stack.web_url, "usera"), HttpApi(stack.web_url, "userb")
    for _ in range(50):
        api_a.submit("tiny")
    b_job = api_b.submit("tiny")
    done = finished(api_b, b_job["id"], timeout=120)
    assert done["status"] == "DONE"
    b = Job.objects.get(pk=b_job["id"])
    overtaken = Job.objects.filter(user=a, started_at__gt=b.created_at, started_at__lt=b.started_at).count()
    assert overtaken <= 1
