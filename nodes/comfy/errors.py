"""Typed failures of a ComfyUI node. `transient` says whether trying again elsewhere may help."""

from __future__ import annotations

from typing import Any


class ComfyError(Exception):
    transient = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NodeUnreachable(ComfyError):
    """Connection refused, DNS failure, reset, or the node closed the socket mid-answer."""

    transient = True


class NodeTimeout(NodeUnreachable):
    """The node accepted the connection but did not answer in time (hung or overloaded)."""


class NodeMisconfigured(ComfyError):
    """Our settings for the node cannot work (an auth header HTTP cannot carry): nothing is sent."""


class BadResponse(ComfyError):
    """The node answered something that is not the ComfyUI protocol (HTML, bad JSON, 5xx)."""

    transient = True

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class PromptRejected(ComfyError):
    """`POST /prompt` answered 400: the graph failed ComfyUI's validation. Final for this job."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]):
        self.error = error or {}
        self.node_errors = node_errors or {}
        super().__init__(summarize_rejection(self.error, self.node_errors))


class PromptPartlyRejected(PromptRejected):
    """`POST /prompt` answered 200 with `node_errors`: some outputs failed validation and the node
    runs the others only. Not what the workflow promised, so it counts as a rejection."""

    def __init__(self, node_errors: dict[str, Any]):
        super().__init__({}, node_errors)


class ExecutionFailed(ComfyError):
    """The prompt ran and a node raised (`execution_error`)."""

    def __init__(self, *, exception_message: str, exception_type: str = "", node_type: str = "", node_id: str = ""):
        self.exception_message = (exception_message or "").strip()
        self.exception_type = exception_type or ""
        self.node_type = node_type or ""
        self.node_id = str(node_id or "")
        where = f"node {self.node_id} ({self.node_type})" if self.node_type else f"node {self.node_id}"
        super().__init__(f"{where} failed: {self.exception_message or self.exception_type}")


class Interrupted(ComfyError):
    """The prompt was interrupted on the node (`execution_interrupted`)."""


class PromptLost(ComfyError):
    """The node knows nothing of a prompt we sent: it restarted, or its queue was cleared."""

    transient = True


class PromptUnknown(PromptLost):
    """Coming back to a prompt (`PromptRun.resume`), the node has it neither in its history nor
    in its queue: lost, or never received if nobody saw the node accept it."""


def summarize_rejection(error: dict[str, Any], node_errors: dict[str, Any]) -> str:
    """A human summary of a 400 from /prompt: one clause per failing input, no tracebacks."""
    parts: list[str] = []
    for node_id, entry in (node_errors or {}).items():
        class_type = entry.get("class_type", "?")
        for err in entry.get("errors", []):
            detail = err.get("details") or ""
            text = err.get("message", "invalid")
            if detail and err.get("type") not in {"exception_during_validation", "exception_during_inner_validation"}:
                text = f"{text}: {detail}"
            parts.append(f"node {node_id} ({class_type}): {text}")
    if parts:
        return "ComfyUI rejected the workflow — " + "; ".join(parts)
    message = error.get("message") or error.get("type") or "invalid prompt"
    details = error.get("details") or ""
    return f"ComfyUI rejected the workflow — {message}" + (f" ({details})" if details and details != message else "")
