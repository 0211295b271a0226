"""Model-aware routing: files checked at submit (422), jobs sent only where their files are,
why a job waits, model affinity and its max-wait escape, no head-of-line blocking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.affinity import choose
from jobs.models import Job
from jobs.queries import QueuedJob
from jobs.scheduler import NodeSlots, dispatch
from nodes.models import ComfyNode
from tests.factories import make_job, make_node, make_workflow, upload_example

pytestmark = pytest.mark.django_db
S = Job.Status
SD15 = "sd15-txt2img"


def model_node(name, files, *, classes=None, **fields):
    """An online node holding `files` (checkpoints)."""
    return make_node(name, class_types=classes or [], inventory={"checkpoints": list(files)}, **fields)


@pytest.fixture
def sd15(db):
    return upload_example(SD15)


def farm_node(name, files, workflow, **fields):
    return model_node(name, files, classes=workflow.class_types, **fields)


# --- submit ----------------------------------------------------------------------------------


def test_the_form_offers_the_farms_files_with_online_counts(alice_api, sd15):
    farm_node("a", ["v1-5-pruned-emaonly.safetensors", "dream.safetensors"], sd15)
    farm_node("b", ["dream.safetensors"], sd15)
    farm_node("off", ["dream.safetensors", "only-offline.safetensors"], sd15, status="OFFLINE")
    farm_node("inactive", ["never-offered.safetensors"], sd15, is_active=False)
    model_node("no-classes", ["not-able.safetensors"])  # cannot run the workflow
    fields = alice_api.get(f"/api/workflows/{SD15}").json()["ui_schema"]["fields"]
    checkpoint = next(f for f in fields if f["id"] == "checkpoint")
    assert checkpoint["choices_from"] == "checkpoints"
    assert checkpoint["models"] == [
        {"name": "dream.safetensors", "nodes_online": 2},
        {"name": "only-offline.safetensors", "nodes_online": 0},
        {"name": "v1-5-pruned-emaonly.safetensors", "nodes_online": 1},
    ]
    assert checkpoint["default"] == "v1-5-pruned-emaonly.safetensors"  # the spec's, present on the farm


def test_a_file_no_active_node_has_is_refused_with_422_naming_field_and_file(alice_api, sd15):
    farm_node("a", ["v1-5-pruned-emaonly.safetensors"], sd15)
    farm_node("inactive", ["dream.safetensors"], sd15, is_active=False)
    response = alice_api.post(
        "/api/jobs", {"workflow": SD15, "inputs": {"prompt": "a cat", "checkpoint": "dream.safetensors"}}
    )
    assert response.status_code == 422, response.json()
    body = response.json()
    assert "dream.safetensors" in body["errors"]["checkpoint"] and "checkpoint" in body["detail"]
    assert not Job.objects.exists()


def test_a_job_records_its_model_files_and_a_missing_field_takes_a_file_the_farm_has(alice_api, sd15):
    farm_node("a", ["dream.safetensors"], sd15)  # the spec's default is not on this farm
    response = alice_api.post("/api/jobs", {"workflow": SD15, "inputs": {"prompt": "a cat"}})
    assert response.status_code == 201, response.json()
    assert response.json()["model_files"] == ["checkpoints/dream.safetensors"]
    assert response.json()["inputs"]["checkpoint"] == "dream.safetensors"


def test_a_file_only_on_an_offline_node_waits_and_says_why(alice_api, sd15):
    farm_node("on", ["v1-5-pruned-emaonly.safetensors"], sd15)
    farm_node("off", ["dream.safetensors"], sd15, status="OFFLINE")
    response = alice_api.post(
        "/api/jobs", {"workflow": SD15, "inputs": {"prompt": "a cat", "checkpoint": "dream.safetensors"}}
    )
    assert response.status_code == 201
    job = alice_api.get(f"/api/jobs/{response.json()['id']}").json()
    assert job["waiting_code"] == "missing_model" and job["waiting_missing"] == ["checkpoints/dream.safetensors"]
    assert job["waiting_reason"] == "No online GPU server has the model files: checkpoints/dream.safetensors"
    alice_api.client.defaults["HTTP_ACCEPT_LANGUAGE"] = "ru"
    job = alice_api.get(f"/api/jobs/{response.json()['id']}").json()
    assert (
        job["waiting_reason"].startswith("Ни у одного сервера")
        and "checkpoints/dream.safetensors" in job["waiting_reason"]
    )
    assert dispatch(runner_id="r").jobs == []  # never sent to the node without its file


def test_waiting_reasons_for_no_node_classes_and_busy(alice, alice_api):
    workflow = make_workflow()
    job = make_job(alice, workflow)
    get = lambda: alice_api.get(f"/api/jobs/{job.pk}").json()  # noqa: E731
    assert (get()["waiting_code"], get()["waiting_reason"]) == ("no_node_online", "No GPU server is online.")
    node = make_node(class_types=["EmptyImage"])
    got = get()
    assert got["waiting_code"] == "missing_classes" and got["waiting_missing"] == ["ImageInvert", "SaveImage"]
    node.class_types, node.foreign_queue, node.max_queue = workflow.class_types, 2, 2
    node.save()
    assert get()["waiting_code"] == "all_busy"
    assert get()["waiting_reason"] == "All GPU servers able to run it are busy."
    node.foreign_queue = 0
    node.save()
    assert (get()["waiting_code"], get()["waiting_reason"]) == ("", "")


def test_a_submits_answer_counts_our_running_jobs_on_the_nodes(alice, bob, alice_api):
    workflow = make_workflow()
    node = make_node(class_types=workflow.class_types, max_queue=2)
    running = [make_job(bob, workflow, status=S.RUNNING, node=node) for _ in range(2)]
    submitted = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).json()
    assert (submitted["waiting_code"], submitted["waiting_reason"]) == (
        "all_busy",
        "All GPU servers able to run it are busy.",
    )
    Job.objects.filter(pk=running[0].pk).update(node_finished_at=timezone.now())  # its slot is free again
    assert alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).json()["waiting_code"] == ""


def test_the_jobs_list_words_each_jobs_reason(alice, alice_api):
    workflow = make_workflow()
    make_job(alice, workflow, model_files=["checkpoints/x.safetensors"])
    make_job(alice, workflow)
    make_node(inventory={"checkpoints": ["y.safetensors"]})
    codes = sorted(item["waiting_code"] for item in alice_api.get("/api/jobs").json()["items"])
    assert codes == ["", "missing_model"]


# --- dispatch --------------------------------------------------------------------------------


def test_each_job_goes_only_to_a_node_with_its_files(alice):
    workflow = make_workflow()
    a = make_node("a", inventory={"checkpoints": ["a.safetensors"]}, max_queue=3)
    b = make_node("b", inventory={"checkpoints": ["b.safetensors", "a.safetensors"]}, max_queue=3)
    alice.max_concurrent_jobs = 10
    alice.save()
    for name in ["b", "a", "b", "a", "b"]:
        make_job(alice, workflow, model_files=[f"checkpoints/{name}.safetensors"])
    claimed = dispatch(runner_id="r").jobs
    assert len(claimed) == 5
    for job in claimed:
        assert job.model_files == ["checkpoints/b.safetensors"] and job.node_id == b.pk or job.node_id in (a.pk, b.pk)
        node = ComfyNode.objects.get(pk=job.node_id)
        assert set(job.model_files) <= {f"checkpoints/{n}" for n in node.inventory["checkpoints"]}


def test_no_head_of_line_blocking_behind_a_job_no_node_can_run(alice, bob):
    workflow = make_workflow()
    make_node("a", inventory={"checkpoints": ["a.safetensors"]}, max_queue=1)
    stuck = make_job(alice, workflow, model_files=["checkpoints/elsewhere.safetensors"])
    runnable = make_job(alice, workflow, model_files=["checkpoints/a.safetensors"])
    claimed = dispatch(runner_id="r").jobs
    assert [j.pk for j in claimed] == [runnable.pk]
    assert Job.objects.get(pk=stuck.pk).status == S.QUEUED


def test_affinity_prefers_the_node_that_holds_the_model_and_remembers_it(alice):
    workflow = make_workflow()
    files = {"checkpoints": ["a.safetensors", "b.safetensors"]}
    holds_a = make_node("holds-a", inventory=files, max_queue=1, held_models="checkpoints/a.safetensors")
    holds_b = make_node("holds-b", inventory=files, max_queue=1, held_models="checkpoints/b.safetensors", priority=5)
    job = make_job(alice, workflow, model_files=["checkpoints/a.safetensors"])
    claimed = dispatch(runner_id="r").jobs
    assert [(j.pk, j.node_id) for j in claimed] == [(job.pk, holds_a.pk)]  # despite the other's priority
    assert ComfyNode.objects.get(pk=holds_a.pk).held_models == "checkpoints/a.safetensors"
    job2 = make_job(alice, workflow, model_files=["checkpoints/a.safetensors"])
    alice.max_concurrent_jobs = 10
    alice.save()
    # The node holding it is busy and the job is fresh: it waits rather than load it elsewhere.
    assert dispatch(runner_id="r").jobs == []
    # Past the max wait, while its model is served (a job of it was sent within the max wait),
    # it still waits for the node that holds it: in a deep backlog every job waits that long.
    Job.objects.filter(pk=job2.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    assert dispatch(runner_id="r").jobs == []
    # Once no job of its model was sent for longer than the max wait (the holder is stuck on a
    # long job), it takes any able node: no model starves.
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(seconds=30))
    claimed = dispatch(runner_id="r").jobs
    assert [(j.pk, j.node_id) for j in claimed] == [(job2.pk, holds_b.pk)]
    assert ComfyNode.objects.get(pk=holds_b.pk).held_models == "checkpoints/a.safetensors"


def test_affinity_off_takes_the_usual_order(alice, settings):
    settings.MODEL_AFFINITY = False
    workflow = make_workflow()
    files = {"checkpoints": ["a.safetensors", "b.safetensors"]}
    make_node("holds-a", inventory=files, max_queue=1, held_models="checkpoints/a.safetensors")
    holds_b = make_node("holds-b", inventory=files, max_queue=1, held_models="checkpoints/b.safetensors", priority=5)
    make_job(alice, workflow, model_files=["checkpoints/a.safetensors"])
    assert [j.node_id for j in dispatch(runner_id="r").jobs] == [holds_b.pk]


def test_a_job_whose_model_no_node_holds_loads_on_a_free_node_at_once(alice):
    workflow = make_workflow()
    files = {"checkpoints": ["a.safetensors", "c.safetensors"]}
    make_node("holds-a", inventory=files, max_queue=1, held_models="checkpoints/a.safetensors")
    empty = make_node("empty", inventory=files, max_queue=1)
    make_job(alice, workflow, model_files=["checkpoints/c.safetensors"])
    assert [j.node_id for j in dispatch(runner_id="r").jobs] == [empty.pk]  # the node holding nothing


# --- property: routing over random farms -------------------------------------------------------

FILES = [f"checkpoints/m{i}" for i in range(4)]


@st.composite
def farm(draw):
    slots = [
        NodeSlots(
            node=ComfyNode(pk=pk, name=f"n{pk}"),
            priority=draw(st.integers(0, 2)),
            max_queue=2,
            free=draw(st.integers(0, 2)),
            load=0,
            class_types=frozenset(draw(st.sets(st.sampled_from(["A", "B"]), min_size=1))),
            models=frozenset(draw(st.sets(st.sampled_from(FILES)))),
            held=frozenset(draw(st.sets(st.sampled_from(FILES), max_size=1))),
        )
        for pk in range(1, draw(st.integers(0, 6)) + 1)
    ]
    ranked = []
    for user in range(draw(st.integers(1, 3))):
        jobs = [
            QueuedJob(
                f"{user}-{i}",
                user,
                draw(st.sampled_from([1, 2])),  # workflow 1 needs class A, 2 needs B
                0,
                timezone.now(),
                model_files=frozenset(draw(st.sets(st.sampled_from(FILES), max_size=2))),
                overdue=draw(st.booleans()),
            )
            for i in range(draw(st.integers(1, 4)))
        ]
        ranked.append((user, jobs))
    return slots, ranked


NEEDS = {1: frozenset({"A"}), 2: frozenset({"B"})}


def _can_run(slot, job):
    return NEEDS[job.workflow_id] <= slot.class_types and job.model_files <= slot.models


@settings(max_examples=300, deadline=None)
@given(farm())
def test_routing_never_picks_a_node_without_the_files(case):
    slots, ranked = case
    free = [s for s in slots if s.free > 0]
    busy = [s for s in slots if s.free <= 0]
    found = choose(free, busy, ranked, lambda job: NEEDS[job.workflow_id], lambda c: c[0] if c else None)
    pairs = [(s, j) for s in free for _, jobs in ranked for j in jobs if _can_run(s, j)]
    if found is None:
        # Nothing runnable without a load and no job past its wait; a model that no node holds
        # waits only for a slot that is the last holder of another model with a queue.
        held = [s.held for s in slots]
        queued_files = {j.model_files for _, jobs in ranked for j in jobs}
        for slot, job in pairs:
            assert job.model_files and not job.model_files <= slot.held
            assert not job.overdue
            last_holder = slot.held in queued_files and sum(slot.held <= h for h in held) == 1
            assert any(job.model_files <= h for h in held) or last_holder
        return
    user, job, slot = found
    assert slot.free > 0 and _can_run(slot, job)
    assert (user, job) in [(u, j) for u, jobs in ranked for j in jobs]


def test_a_model_in_demand_spreads_to_more_nodes():
    """Loads go where demand is: a node whose own model has no queue takes the busy model's
    jobs, and one whose model is still wanted keeps it."""
    ckpt = "checkpoints/a"
    make = lambda pk, held, free=1: NodeSlots(  # noqa: E731
        ComfyNode(pk=pk, name=f"n{pk}"), 0, 1, free, 0, frozenset({"A"}), frozenset({ckpt, "checkpoints/b"}), held
    )
    busy_a = make(1, frozenset({ckpt}), free=0)
    holds_b = make(2, frozenset({"checkpoints/b"}))
    many_a = [QueuedJob(f"a{i}", 1, 1, 0, timezone.now(), model_files=frozenset({ckpt})) for i in range(12)]
    one_b = [QueuedJob("b", 2, 1, 0, timezone.now(), model_files=frozenset({"checkpoints/b"}))]
    needs = lambda job: frozenset({"A"})  # noqa: E731
    first = lambda c: c[0] if c else None  # noqa: E731
    # b still has a job: the node holding b runs it.
    assert choose([holds_b], [busy_a], [(1, many_a), (2, one_b)], needs, first)[1].pk == "b"
    # No b left and 12 jobs for one node holding a: worth loading a on the second node.
    assert choose([holds_b], [busy_a], [(1, many_a)], needs, first)[1].pk == "a0"
    # Two jobs for a: not worth a load; they wait for the node that holds a.
    assert choose([holds_b], [busy_a], [(1, many_a[:2])], needs, first) is None


def test_a_file_a_node_lost_is_dropped_from_its_inventory(alice):
    from nodes.services import forget_model_files

    workflow = make_workflow()
    lost = make_node("lost", inventory={"checkpoints": ["a.safetensors", "b.safetensors"]}, held_models="x")
    other = make_node("other", inventory={"checkpoints": ["a.safetensors"]})
    forget_model_files(lost.pk, ["checkpoints/a.safetensors"], "lost no longer has checkpoints/a.safetensors")
    lost.refresh_from_db()
    assert lost.inventory == {"checkpoints": ["b.safetensors"]} and lost.inventory_stale and lost.held_models == ""
    make_job(alice, workflow, model_files=["checkpoints/a.safetensors"])
    assert [j.node_id for j in dispatch(runner_id="r").jobs] == [other.pk]
