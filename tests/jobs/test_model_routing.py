"""Model-aware routing: files checked at submit (422), jobs sent only where their files are,
why a job waits, model affinity and its max-wait escape, no head-of-line blocking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.models import Job
from jobs.queries import QueuedJob
from jobs.scheduler import Affinity, NodeSlots, dispatch
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
    # Past the max wait it takes any able node (no model starves).
    Job.objects.filter(pk=job2.pk).update(created_at=timezone.now() - timedelta(seconds=60))
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


def _slots(draw, count):
    return [
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
        for pk in range(1, count + 1)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.integers(0, 6),
    st.sets(st.sampled_from(FILES), max_size=2),
    st.sets(st.sampled_from(["A", "B"]), min_size=1),
    st.booleans(),
    st.booleans(),
)
def test_placement_never_picks_a_node_without_the_files(data, count, files, classes, affinity_on, waited_long):
    slots = _slots(data.draw, count)
    free = [s for s in slots if s.free > 0]
    busy = [s for s in slots if s.free <= 0]
    job = QueuedJob("j", 1, 1, 0, timezone.now(), model_files=frozenset(files), overdue=waited_long)
    affinity = Affinity(on=affinity_on, busy=busy)
    placed = affinity.place(job, free, frozenset(classes))
    able_free = [s for s in free if files <= s.models and classes <= s.class_types]
    if placed is None:
        # Only affinity holds a job back, and only while a busy able node holds its files.
        assert not able_free or (
            affinity_on and not waited_long and any(files <= s.held and classes <= s.class_types for s in busy)
        )
    else:
        tier, slot = placed
        assert files <= slot.models and classes <= slot.class_types and slot.free > 0
        if affinity_on and files and any(files <= s.held for s in able_free):
            assert tier == 0 and files <= slot.held  # a free node that holds them wins
