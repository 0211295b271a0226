"""Which GPU servers can run a job: its model files at submit, and why a queued job waits.

At submit the job's prompt is built (uploads stand in by name) and its model files are read
from it generically (nodes.inventory.prompt_needs): the values at the inputs the farm's
/object_info shows taking model files, plus those the spec's ``choices_from`` fields bind. A
file no active node has is refused (422, naming the field and the file). The files are stored
on the job; dispatch sends it only to a node that has them all.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import Unprocessable, field_errors_detail
from jobs import queries
from nodes import inventory
from nodes.farm import count_busy, farm_model_inputs, node_views
from nodes.inventory import NodeView
from workflows.prompt import build_prompt
from workflows.spec import file_fields, model_binds, workflow_spec


def fill_model_defaults(workflow, inputs: dict, offered: dict[str, list[tuple[str, int]]]) -> dict:
    """A choices_from field left empty takes the spec's default when the farm has it, else the
    first file offered (the form shows the same); with nothing offered it stays empty."""
    spec = workflow_spec(workflow)
    filled = dict(inputs)
    for fld in spec.inputs:
        if fld.type != "choice" or fld.choices_from is None or filled.get(fld.id) not in (None, ""):
            continue
        names = [name for name, _count in offered.get(fld.id, [])]
        if fld.default in names:
            filled[fld.id] = fld.default
        elif names:
            filled[fld.id] = names[0]
    return filled


def job_model_files(workflow, values: dict, views: list[NodeView] | None = None) -> list[str]:
    """The model files ("folder/name") the job's prompt names; raises Unprocessable when no
    active node has one of them, or when none has them all together."""
    views = node_views() if views is None else views
    spec = workflow_spec(workflow)
    binds = model_binds(spec)
    needs = inventory.prompt_needs(_prompt_values(workflow, spec, values), farm_model_inputs(views), binds)
    if not needs:
        return []
    classes = frozenset(workflow.class_types or [])
    candidates = [v for v in views if classes <= v.class_types] or views
    field_of = {(b.node, b.input): f.id for f in spec.inputs for b in f.bind}
    errors: dict[str, str] = {}
    for need in needs:
        if any(need.key in v.models for v in candidates):
            continue
        folder, name = inventory.split_key(need.key)
        where = field_of.get((need.node, need.input)) or f"node {need.node}.{need.input}"
        errors.setdefault(
            where, _("model file '%(name)s' (%(folder)s) is on no active GPU server") % {"name": name, "folder": folder}
        )
    keys = [need.key for need in needs]
    if not errors and not inventory.able(candidates, classes, keys):
        errors["inputs"] = _("no active GPU server has all of these model files: %(files)s") % {
            "files": ", ".join(keys)
        }
    if errors:
        raise Unprocessable(field_errors_detail(errors), errors=errors)
    return keys


def _prompt_values(workflow, spec, values: dict) -> dict:
    """The job's prompt as far as model files go: its combo values with the job's values written
    in, as build_prompt would (from the workflow's stored combo inputs, so the graph, a big
    document, stays unread; an older version without them builds the whole prompt)."""
    if workflow.combo_inputs is None:
        stand_ins = dict.fromkeys(file_fields(workflow.spec), "upload.png")
        return build_prompt(workflow, values, stand_ins, rng=random.Random(0))
    prompt: dict = {}
    for node_id, class_type, name, value in workflow.combo_inputs:
        prompt.setdefault(node_id, {"class_type": class_type, "inputs": {}})["inputs"][name] = value
    for fld in spec.inputs:
        if fld.id in values and fld.type not in ("image", "mask", "seed"):
            for bind in fld.bind:
                if bind.node in prompt and isinstance(values[fld.id], str):
                    prompt[bind.node]["inputs"][bind.input] = values[fld.id]
    return prompt


def waiting_states(jobs: Iterable, busy: dict[int, int] | None = None, views: list | None = None) -> dict:
    """{job id: (code, what is missing)} for the queued jobs among `jobs` that cannot start now
    (codes in nodes.inventory); one read of the farm for the whole list (`views`: the caller's,
    read moments ago). Jobs need ``workflow.class_types`` and ``model_files``."""
    queued = [job for job in jobs if job.status == "QUEUED"]
    if not queued:
        return {}
    views = node_views() if views is None else views
    if busy is None:
        busy = queries.busy_slots([v.pk for v in views]) if views else {}
    count_busy(views, busy)
    out = {}
    for job in queued:
        code, missing = inventory.waiting_reason(views, job.workflow.class_types or [], job.model_files or [])
        if code:
            out[job.pk] = (code, missing)
    return out


# Worded so that the live page can fill the same text in (jobs/_status_labels.html).
REASONS = {
    inventory.NO_NODE_ONLINE: gettext_lazy("No GPU server is online."),
    inventory.MISSING_CLASSES: gettext_lazy("No online GPU server has the node classes: %(names)s"),
    inventory.MISSING_MODEL: gettext_lazy("No online GPU server has the model files: %(names)s"),
    inventory.ALL_BUSY: gettext_lazy("All GPU servers able to run it are busy."),
}


def reason_text(code: str, missing: list[str]) -> str:
    template = REASONS.get(code)
    if template is None:
        return ""
    text = str(template)
    return text % {"names": ", ".join(missing)} if "%(names)s" in text else text
