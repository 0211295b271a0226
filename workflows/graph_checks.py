"""Checks of an API-format graph against the node catalogue, and the error record they produce.

Part of upload validation (see ``workflows.validation``): node shape, links (missing sources,
output indexes, types), literal values ComfyUI would refuse, missing required inputs and cycles.
Findings go into a ``Report``; a class the catalogue does not know is a warning. Pure: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workflows.catalog_rules import (
    AUTOGROW,
    MATCH_TYPE,
    Catalog,
    InputKind,
    input_kind,
    is_link,
    literal_problem,
    types_compatible,
)

FileName = Literal["workflow", "spec"]


@dataclass(frozen=True)
class WorkflowError:
    """One problem: which uploaded file, where in it (``inputs[2].bind[0].node``), and what."""

    file: FileName
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "path": self.path, "message": self.message}


class Report:
    """Collects errors and warnings while the checks run."""

    def __init__(self) -> None:
        self.errors: list[WorkflowError] = []
        self.warnings: list[WorkflowError] = []

    def error(self, file: FileName, path: str, message: str) -> None:
        self.errors.append(WorkflowError(file, path, message))

    def warn(self, file: FileName, path: str, message: str) -> None:
        self.warnings.append(WorkflowError(file, path, message))


def node_label(node_id: str, graph: dict[str, Any]) -> str:
    node = graph.get(node_id)
    class_type = node.get("class_type") if isinstance(node, dict) else None
    return f"node {node_id!r} ({class_type})" if class_type else f"node {node_id!r}"


def check_graph_nodes(graph: dict[str, Any], catalog: Catalog, report: Report) -> None:
    """Check every node's shape, links and literal values against the catalogue."""
    for node_id, node in graph.items():
        where = node_id
        if not isinstance(node, dict):
            report.error("workflow", where, f"node {node_id!r} must be an object with class_type and inputs")
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            report.error("workflow", where, f"node {node_id!r} has no class_type")
            continue
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            report.error("workflow", where, f"node {node_id!r} ({class_type}) has no inputs object")
            continue
        info = catalog.get(class_type)
        if info is None:
            report.warn(
                "workflow",
                where,
                f"node {node_id!r} uses {class_type!r}, which stock ComfyUI does not have (a custom "
                "node?); only GPU servers that report it can run this workflow",
            )
        for name, value in inputs.items():
            spec = input_kind(class_type, info, name) if info else None
            _check_input_value(graph, catalog, node_id, class_type, name, value, spec, info, report)
        if info:
            for name, spec in info.get("input", {}).get("required", {}).items():
                if isinstance(spec, list) and spec and spec[0] == AUTOGROW:
                    continue  # its items are written "name.a", "name.b"… (checked one by one)
                if name not in inputs:
                    report.error(
                        "workflow",
                        f"{node_id}.inputs",
                        f"node {node_id!r} ({class_type}) misses required input {name!r}",
                    )
    _check_cycles(graph, report)


def _check_input_value(
    graph: dict[str, Any],
    catalog: Catalog,
    node_id: str,
    class_type: str,
    name: str,
    value: Any,
    spec: InputKind | None,
    info: dict[str, Any] | None,
    report: Report,
) -> None:
    where = f"{node_id}.inputs.{name}"
    label = f"node {node_id!r} ({class_type}) input {name!r}"
    if info is not None and spec is None:
        report.warn("workflow", where, f"{label}: {class_type} has no such input; ComfyUI ignores it")
        return
    if isinstance(value, list) and not is_link(value):
        report.error("workflow", where, f"{label}: a list must be a link [node_id, output_index]")
        return
    if is_link(value):
        _check_link(graph, catalog, label, where, value, spec, report)
        return
    if spec is None:
        return
    if not spec.is_widget and spec.kind not in ("*", MATCH_TYPE):  # the server takes a value for those
        report.error("workflow", where, f"{label} expects a link to a {spec.kind} output, got a value {value!r}")
        return
    problem = literal_problem(spec, value)
    if problem:
        report.error("workflow", where, f"{label}: {problem}")


def _check_link(
    graph: dict[str, Any],
    catalog: Catalog,
    label: str,
    where: str,
    value: list,
    spec: InputKind | None,
    report: Report,
) -> None:
    source, index = value
    if not isinstance(source, str):
        report.error("workflow", where, f"{label}: link source {source!r} must be a node id string")
        return
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        report.error("workflow", where, f"{label}: link output index {index!r} must be a whole number ≥ 0")
        return
    if source not in graph:
        report.error("workflow", where, f"{label} links to node {source!r}, which is not in the workflow")
        return
    source_node = graph[source]
    source_class = source_node.get("class_type") if isinstance(source_node, dict) else None
    source_info = catalog.get(source_class) if isinstance(source_class, str) else None
    if source_info is None:
        return
    outputs = source_info.get("output", [])
    if index >= len(outputs):
        report.error(
            "workflow",
            where,
            f"{label} links to output {index} of {node_label(source, graph)}, which has only "
            f"{len(outputs)} output(s): {', '.join(map(str, outputs))}",
        )
        return
    out_type = outputs[index]
    if spec is not None and isinstance(out_type, str) and spec.kind != "COMBO":
        if not types_compatible(out_type, spec.kind):
            report.error(
                "workflow",
                where,
                f"{label} expects {spec.kind} but output {index} of {node_label(source, graph)} is {out_type}",
            )


def _check_cycles(graph: dict[str, Any], report: Report) -> None:
    """Report a dependency cycle once (ComfyUI refuses such graphs)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def deps(node_id: str) -> list[str]:
        node = graph.get(node_id)
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            return []
        return [v[0] for v in inputs.values() if is_link(v) and isinstance(v[0], str) and v[0] in graph]

    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(deps(start)))]
        state[start] = 1
        while stack:
            node_id, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node_id] = 2
                stack.pop()
            elif state.get(child) == 1:
                cycle = [n for n, _ in stack][[n for n, _ in stack].index(child) :] + [child]
                report.error("workflow", child, "the graph has a cycle: " + " -> ".join(cycle))
                return
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(deps(child))))
