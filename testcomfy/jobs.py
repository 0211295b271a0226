"""The 0.33 jobs API view (``/api/jobs``) over the queue and the history."""

from __future__ import annotations

import re
from typing import Any

from .queue import PromptQueue

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
MEDIA_KEYS = ("images", "video", "videos", "audio", "gifs", "3d")
PREVIEWABLE_KEYS = ("images", "video", "videos", "audio", "gifs")


class BadRequest(ValueError):
    """A query parameter the real server rejects with 400 ``{"error": …}``."""


def is_canonical_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


def _workflow_id(extra: dict[str, Any]) -> str | None:
    wf = (extra.get("extra_pnginfo") or {}).get("workflow") if isinstance(extra.get("extra_pnginfo"), dict) else None
    return wf.get("id") if isinstance(wf, dict) else None


def _counts(outputs: dict[str, Any]) -> tuple[int, int, dict[str, Any] | None]:
    total = previewable = 0
    preview = None
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for key in MEDIA_KEYS:
            items = ui.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                total += 1
                if key in PREVIEWABLE_KEYS and isinstance(item, dict) and item.get("type") in ("output", "temp"):
                    previewable += 1
                    if preview is None:
                        preview = {**item, "nodeId": node_id, "mediaType": key}
    return total, previewable, preview


def queued_job(item: tuple, status: str) -> dict[str, Any]:
    extra = item[3]
    job: dict[str, Any] = {"id": item[1], "status": status, "priority": item[0]}
    if "create_time" in extra:
        job["create_time"] = extra["create_time"]
    job["outputs_count"] = 0
    job["previewable_outputs_count"] = 0
    if (wf := _workflow_id(extra)) is not None:
        job["workflow_id"] = wf
    return job


def history_job(prompt_id: str, entry: dict[str, Any], full: bool) -> dict[str, Any]:
    item = entry["prompt"]
    extra = item[3]
    status_info = entry.get("status") or {}
    messages = status_info.get("messages", [])
    kinds = [m[0] for m in messages]
    if status_info.get("status_str") == "success":
        status = "completed"
    elif "execution_interrupted" in kinds:
        status = "cancelled"
    else:
        status = "failed"
    job: dict[str, Any] = {"id": prompt_id, "status": status, "priority": item[0]}
    if "create_time" in extra:
        job["create_time"] = extra["create_time"]
    start = next((m[1].get("timestamp") for m in messages if m[0] == "execution_start"), None)
    end = next(
        (
            m[1].get("timestamp")
            for m in reversed(messages)
            if m[0] in ("execution_success", "execution_error", "execution_interrupted")
        ),
        None,
    )
    if start is not None:
        job["execution_start_time"] = start
    if end is not None:
        job["execution_end_time"] = end
    error = next((m[1] for m in messages if m[0] == "execution_error"), None)
    if error is not None:
        job["execution_error"] = error
    total, previewable, preview = _counts(entry.get("outputs", {}))
    job["outputs_count"] = total
    job["previewable_outputs_count"] = previewable
    if preview is not None:
        job["preview_output"] = preview
    if (wf := _workflow_id(extra)) is not None:
        job["workflow_id"] = wf
    if full:
        job["outputs"] = entry.get("outputs", {})
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": item[2], "extra_data": extra}
    return job


def find_job(queue: PromptQueue, prompt_id: str) -> dict[str, Any] | None:
    for item in queue.running_items():
        if item[1] == prompt_id:
            return queued_job(item, "in_progress")
    for item in queue.pending_items():
        if item[1] == prompt_id:
            return queued_job(item, "pending")
    if prompt_id in queue.history:
        return history_job(prompt_id, queue.history[prompt_id], True)
    return None


def list_jobs(queue: PromptQueue, query: dict[str, str]) -> dict[str, Any]:
    """``GET /api/jobs``; raises BadRequest for invalid parameters."""
    wanted = set(STATUSES)
    if query.get("status"):
        wanted = {s.strip() for s in query["status"].split(",") if s.strip()}
        bad = sorted(wanted - set(STATUSES))
        if bad:
            raise BadRequest(f"Invalid status value(s): {', '.join(bad)}. Valid values: {', '.join(STATUSES)}")
    sort_by = query.get("sort_by", "created_at")
    if sort_by not in ("created_at", "execution_duration"):
        raise BadRequest("sort_by must be 'created_at' or 'execution_duration'")
    sort_order = query.get("sort_order", "desc")
    if sort_order not in ("asc", "desc"):
        raise BadRequest("sort_order must be 'asc' or 'desc'")
    try:
        limit = int(query["limit"]) if query.get("limit") not in (None, "") else None
        offset = int(query.get("offset") or 0)
    except ValueError as exc:
        raise BadRequest("limit and offset must be integers") from exc
    if (limit is not None and limit < 1) or offset < 0:
        raise BadRequest("limit must be positive and offset must be non-negative")
    jobs = [queued_job(i, "in_progress") for i in queue.running_items()]
    jobs += [queued_job(i, "pending") for i in sorted(queue.pending_items(), key=lambda i: (i[0], i[1]))]
    jobs += [history_job(pid, entry, False) for pid, entry in queue.history.items()]
    jobs = [j for j in jobs if j["status"] in wanted]
    if query.get("workflow_id"):
        jobs = [j for j in jobs if j.get("workflow_id") == query["workflow_id"]]
    if sort_by == "created_at":
        key = lambda j: j.get("create_time", 0)  # noqa: E731
    else:
        key = lambda j: j.get("execution_end_time", 0) - j.get("execution_start_time", 0)  # noqa: E731
    jobs.sort(key=key, reverse=sort_order == "desc")
    total = len(jobs)
    page = jobs[offset : offset + limit] if limit is not None else jobs[offset:]
    return {
        "jobs": page,
        "pagination": {"offset": offset, "limit": limit, "total": total, "has_more": offset + len(page) < total},
    }
