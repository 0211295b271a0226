"""Import ComfyUI's official workflow templates and report how many become valid prompts.

    python -m bench.ui_corpus            # the table for docs/workflow-spec.md
    python -m bench.ui_corpus --details  # …and every template that did not pass, with its reason

The templates come from the pinned ``comfyui-workflow-templates-json`` package (requirements.txt).
Each one is converted with ``workflows.ui_format`` against the recorded catalogue and the prompt
is checked by the test ComfyUI's validator (a port of the real server's). Model-file names are
judged apart: they depend on what the GPU servers hold, so a ``value_not_in_list`` on a model-file
combo does not make a prompt invalid here. Where a template also saved its widgets by name
(``widgets_values_named``), the converted values are compared with them: a difference is "wrong".
The drafted spec of each converted template is checked with the upload validator.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nodes.comfy.catalog import object_info
from testcomfy.catalog import Catalog as TestCatalog
from testcomfy.validation import Validator
from workflows.catalog_rules import input_kind
from workflows.drafting import draft_spec
from workflows.ui_format import UIConversionError, convert_ui_workflow, is_ui_format
from workflows.validation import WorkflowInvalid, validate_upload

PACKAGE = "comfyui_workflow_templates_json"


@dataclass
class Outcome:
    name: str
    status: str  # "api" | "needs" | "refused" | "invalid" | "valid"
    reason: str = ""
    missing: dict[str, str] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    compared: int = 0  # values checked against the names the template saved
    draft_ok: bool | None = None
    draft_reason: str = ""


def template_files() -> list[Path]:
    """Every workflow JSON of the package (its index and search files left out)."""
    folder = Path(str(resources.files(PACKAGE) / "templates"))
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(("index", "fuse_options")))


def _validator() -> Validator:
    catalog = TestCatalog(input_files=list, model_files=lambda folder: [])
    return Validator(catalog, file_exists=lambda name: True, comfy_root="/comfy")


def _model_file_error(prompt: dict[str, Any], node_id: str, error: dict[str, Any]) -> bool:
    if error.get("type") != "value_not_in_list":
        return False
    cls = prompt.get(node_id, {}).get("class_type", "")
    info = object_info().get(cls)
    name = (error.get("extra_info") or {}).get("input_name", "")
    kind = input_kind(cls, info, name) if info else None
    return bool(kind and kind.free_choices)


def validation_problem(prompt: dict[str, Any], validator: Validator) -> str | None:
    """None when the test ComfyUI accepts the prompt (model-file names aside), else why not."""
    try:
        ok, error, _good, node_errors = validator.validate_prompt(json.loads(json.dumps(prompt)))
    except Exception as exc:  # the real server answers 500 here
        return f"the validator raised {type(exc).__name__}: {exc}"
    if ok:
        return None
    if error.get("type") != "prompt_outputs_failed_validation":
        return f"{error.get('type')}: {error.get('message')}"
    reasons = [
        f"{node_id} ({entry.get('class_type')}): {e.get('type')} {e.get('details')}"
        for node_id, entry in node_errors.items()
        for e in entry.get("errors", [])
        if not _model_file_error(prompt, node_id, e)
    ]
    return "; ".join(reasons)[:400] if reasons else None


def named_differences(workflow: dict[str, Any], prompt: dict[str, Any]) -> tuple[list[str], int]:
    """Compare the converted values with the names the template saved beside its widgets:
    ``(differences, values compared)``."""
    differences, compared = [], 0
    subgraphs = {s.get("id"): s for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    scopes: list[tuple[str, list[dict[str, Any]]]] = [("", workflow["nodes"])]
    # Inner nodes are compared only where the subgraph node does not hold its own widget values.
    for node in workflow["nodes"]:
        definition = subgraphs.get(node.get("type"))
        if definition and not node.get("widgets_values"):
            scopes.append((f"{node['id']}:", definition.get("nodes") or []))
    for prefix, nodes in scopes:
        for node in nodes:
            named = node.get("widgets_values_named")
            entry = prompt.get(f"{prefix}{node.get('id')}")
            if not isinstance(named, dict) or entry is None:
                continue
            linked = {i.get("name") for i in node.get("inputs") or [] if i.get("link") is not None}
            for name, value in named.items():
                if name in linked or name not in entry["inputs"]:
                    continue
                got = entry["inputs"][name]
                got = got.get("__value__") if isinstance(got, dict) and "__value__" in got else got
                compared += 1
                if got != value:
                    differences.append(f"{prefix}{node['id']} ({node['type']}).{name}: {got!r} != saved {value!r}")
    return differences, compared


def judge(name: str, workflow: Any, validator: Validator, *, draft: bool = True) -> Outcome:
    if not is_ui_format(workflow):
        return Outcome(name, "api", "already in API format")
    try:
        conversion = convert_ui_workflow(workflow, object_info())
    except UIConversionError as exc:
        if exc.missing:
            return Outcome(name, "needs", str(exc), missing=exc.missing)
        return Outcome(name, "refused", str(exc))
    prompt = conversion.prompt
    wrong, compared = named_differences(workflow, prompt)
    outcome = Outcome(name, "valid", wrong=wrong, compared=compared)
    problem = validation_problem(prompt, validator)
    if problem:
        outcome.status, outcome.reason = "invalid", problem
    if draft:
        try:
            spec = draft_spec(prompt, slug="corpus", name=name[:200], exposed=conversion.exposed)
            validate_upload(prompt, spec)
            outcome.draft_ok = True
        except (WorkflowInvalid, ValueError) as exc:
            errors = getattr(exc, "errors", None) or [exc]
            outcome.draft_ok, outcome.draft_reason = False, "; ".join(str(e) for e in errors[:3])[:300]
    return outcome


def run(files: list[Path] | None = None, *, draft: bool = True) -> list[Outcome]:
    validator = _validator()
    outcomes = []
    for path in template_files() if files is None else files:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        outcomes.append(judge(path.stem, workflow, validator, draft=draft))
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    count = Counter(o.status for o in outcomes)
    built_in = len(outcomes) - count["api"] - count["needs"]
    converted = count["invalid"] + count["valid"]
    return {
        "tried": len(outcomes),
        "api_format": count["api"],
        "needs_other_nodes": count["needs"],
        "built_in_only": built_in,
        "converted": converted,
        "valid": count["valid"],
        "refused": count["refused"],
        "invalid": count["invalid"],
        "wrong": sum(1 for o in outcomes if o.wrong),
        "draft_ok": sum(1 for o in outcomes if o.draft_ok),
        "compared": sum(o.compared for o in outcomes),
    }


def table(outcomes: list[Outcome]) -> str:
    s = summary(outcomes)
    pct = (lambda n: f"{100 * n / s['built_in_only']:.1f} %") if s["built_in_only"] else (lambda n: "–")
    kinds = Counter()
    for o in outcomes:
        for what in {_kind(w) for w in o.missing.values()}:
            kinds[what] += 1
    rows = [
        ("templates tried", s["tried"], ""),
        ("already API format", s["api_format"], ""),
        (
            "need node classes the recorded ComfyUI lacks (by kind; one may need several)",
            s["needs_other_nodes"],
            _kinds_text(kinds),
        ),
        ("built-in nodes only", s["built_in_only"], "100 %"),
        ("converted", s["converted"], pct(s["converted"])),
        ("valid prompt (model files aside)", s["valid"], pct(s["valid"])),
        ("refused by the converter, with a reason", s["refused"], pct(s["refused"])),
        ("converted but refused by the validator", s["invalid"], pct(s["invalid"])),
        (f"wrong (of {s['compared']} values the templates also saved by name)", s["wrong"], pct(s["wrong"])),
        ("drafted spec passes upload validation", s["draft_ok"], pct(s["draft_ok"])),
    ]
    lines = ["| templates | count | share of built-in-only (or breakdown) |", "|---|---:|---|"]
    lines += [f"| {label} | {n} | {extra} |" for label, n, extra in rows]
    return "\n".join(lines)


def _kind(what: str) -> str:
    if what == "custom node or a newer ComfyUI":
        return "custom nodes or a newer ComfyUI (unmarked)"
    if what.startswith("custom node"):
        return "custom nodes"
    return {"paid API node": "paid API nodes", "built into a newer ComfyUI": "a newer ComfyUI"}.get(what, "other")


def _kinds_text(kinds: Counter) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common())


def details(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        if o.status in ("refused", "invalid"):
            lines.append(f"- {o.name}: {o.status}: {o.reason}")
        for w in o.wrong:
            lines.append(f"- {o.name}: wrong: {w}")
        if o.draft_ok is False:
            lines.append(f"- {o.name}: drafted spec refused: {o.draft_reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--details", action="store_true", help="list every template that did not pass")
    parser.add_argument("--needs", action="store_true", help="also list the missing classes per template")
    args = parser.parse_args(argv)
    outcomes = run()
    print(table(outcomes))
    if args.details:
        print()
        print(details(outcomes))
    if args.needs:
        for o in outcomes:
            if o.status == "needs":
                print(f"- {o.name}: {', '.join(f'{c} ({w})' for c, w in sorted(o.missing.items()))}")


if __name__ == "__main__":
    main()
