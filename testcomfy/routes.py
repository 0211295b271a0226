"""HTTP routes of ComfyUI 0.33 (prompt, queue, history, info, jobs) plus /__control__.

Bodies are parsed the way server.py does: a handler that raises yields aiohttp's plain
500, which is what the real server answers to malformed bodies.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import jobs
from .catalog import MODEL_FOLDERS
from .faults import CONTROL_PATH, GARBAGE_HTML, GARBAGE_JSON
from .routes_files import add_file_routes

if TYPE_CHECKING:
    from .server import TestComfy

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
INVALID_ID = {
    "type": "invalid_prompt_id",
    "message": "prompt_id must be a valid UUID",
    "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
    "extra_info": {},
}


def build_routes(server: TestComfy) -> tuple[web.RouteTableDef, web.RouteTableDef]:
    """``(api_routes, plain_routes)``: the first set is also mounted under /api."""
    routes = web.RouteTableDef()
    plain = web.RouteTableDef()
    q = server.queue

    def garbage() -> web.Response | None:
        kind = server.faults.state["garbage"]
        if kind == "html":
            return web.Response(text=GARBAGE_HTML, content_type="text/html")
        if kind == "json":
            return web.Response(text=GARBAGE_JSON, content_type="application/json")
        return None

    @routes.get("/ws")
    async def ws(request: web.Request) -> web.StreamResponse:
        return await server.hub.handle(request)

    @routes.get("/prompt")
    async def get_prompt(request: web.Request) -> web.Response:
        return web.json_response(server.queue_info())

    @routes.post("/prompt")
    async def post_prompt(request: web.Request) -> web.Response:
        data = await request.json()
        if "number" in data:
            number: Any = float(data["number"])
        else:
            number = q.number
            if data.get("front"):
                number = -number
            q.number += 1
        if "prompt" not in data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = data["prompt"]
        prompt_id = data.get("prompt_id")
        if prompt_id is None:
            prompt_id = str(uuid.uuid4())
        elif not jobs.is_canonical_uuid(prompt_id):
            return web.json_response({"error": INVALID_ID, "node_errors": {}}, status=400)
        valid = server.validator.validate_prompt(prompt, data.get("partial_execution_targets"))
        extra_data = data.get("extra_data", {})
        if "client_id" in data:
            extra_data["client_id"] = data["client_id"]
        if not valid[0]:
            return web.json_response({"error": valid[1], "node_errors": valid[3]}, status=400)
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        if "Comfy-Usage-Source" in request.headers:
            extra_data["comfy_usage_source"] = request.headers["Comfy-Usage-Source"]
        extra_data["create_time"] = int(time.time() * 1000)
        q.put((number, prompt_id, prompt, extra_data, valid[2], sensitive))
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": valid[3]})

    @routes.get("/queue")
    async def get_queue(request: web.Request) -> web.Response:
        return garbage() or web.json_response(
            {
                "queue_running": [list(i[:5]) for i in q.running_items()],
                "queue_pending": [list(i[:5]) for i in q.pending_items()],
            }
        )

    @routes.post("/queue")
    async def post_queue(request: web.Request) -> web.Response:
        data = await request.json()
        if "clear" in data and data["clear"]:
            q.wipe()
        if "delete" in data:
            for prompt_id in data["delete"]:
                q.delete(lambda item, pid=prompt_id: item[1] == pid)
        return web.Response(status=200)

    @routes.post("/interrupt")
    async def post_interrupt(request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except json.JSONDecodeError:
            data = {}
        prompt_id = data.get("prompt_id")
        if prompt_id:
            if any(item[1] == prompt_id for item in q.running_items()):
                server.executor.interrupt()
        else:
            server.executor.interrupt()
        return web.Response(status=200)

    @routes.post("/free")
    async def post_free(request: web.Request) -> web.Response:
        data = await request.json()
        free_memory = data.get("free_memory", False)
        if data.get("unload_models", False):
            q.set_flag("unload_models", True)
        if free_memory:
            q.set_flag("free_memory", free_memory)
        return web.Response(status=200)

    @routes.get("/history")
    async def get_history(request: web.Request) -> web.Response:
        query = request.rel_url.query
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query["offset"]) if "offset" in query else -1
        return web.json_response(q.get_history(max_items=max_items, offset=offset))

    @routes.get("/history/{prompt_id}")
    async def get_history_item(request: web.Request) -> web.Response:
        return web.json_response(q.get_history(prompt_id=request.match_info["prompt_id"]))

    @routes.post("/history")
    async def post_history(request: web.Request) -> web.Response:
        data = await request.json()
        if "clear" in data and data["clear"]:
            q.wipe_history()
        if "delete" in data:
            for prompt_id in data["delete"]:
                q.delete_history(prompt_id)
        return web.Response(status=200)

    @routes.get("/system_stats")
    async def system_stats(request: web.Request) -> web.Response:
        delay = server.faults.state["slow_system_stats"]
        if delay:
            await asyncio.sleep(delay)
        return garbage() or web.json_response(server.system_stats())

    @routes.get("/features")
    async def features(request: web.Request) -> web.Response:
        return web.json_response(server.features())

    @routes.get("/object_info")
    async def object_info(request: web.Request) -> web.Response:
        return web.json_response(server.catalog.all_info())

    @routes.get("/object_info/{node_class}")
    async def object_info_one(request: web.Request) -> web.Response:
        cls = request.match_info["node_class"]
        if not server.catalog.has(cls):
            return web.json_response({})
        return web.json_response({cls: server.catalog.info(cls)})

    @routes.get("/models")
    async def models(request: web.Request) -> web.Response:
        return web.json_response(list(MODEL_FOLDERS))

    @routes.get("/models/{folder}")
    async def models_folder(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(server.folders.model_files(folder))

    @routes.get("/embeddings")
    async def embeddings(request: web.Request) -> web.Response:
        names = [n.rsplit(".", 1)[0] for n in server.folders.model_files("embeddings")]
        return web.json_response(names)

    add_file_routes(routes, server)
    _add_jobs_routes(plain, server)

    @plain.get(CONTROL_PATH)
    async def control_state(request: web.Request) -> web.Response:
        return web.json_response(server.control_state())

    @plain.post(CONTROL_PATH)
    async def control(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            return web.json_response(server.control(changes))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    return routes, plain


def _add_jobs_routes(routes: web.RouteTableDef, server: TestComfy) -> None:
    q = server.queue

    @routes.get("/api/jobs")
    async def list_jobs(request: web.Request) -> web.Response:
        try:
            return web.json_response(jobs.list_jobs(q, dict(request.rel_url.query)))
        except jobs.BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)

    @routes.get("/api/jobs/{job_id}")
    async def get_job(request: web.Request) -> web.Response:
        job = jobs.find_job(q, request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(job)

    def cancel(prompt_id: str) -> bool:
        if q.delete(lambda item: item[1] == prompt_id):
            return True
        if any(item[1] == prompt_id for item in q.running_items()):
            server.executor.interrupt()
            return True
        return False

    @routes.post("/api/jobs/{job_id}/cancel")
    async def cancel_one(request: web.Request) -> web.Response:
        return web.json_response({"cancelled": cancel(request.match_info["job_id"])})

    @routes.post("/api/jobs/cancel")
    async def cancel_many(request: web.Request) -> web.Response:
        data = await request.json()
        ids = data.get("job_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list):
            return web.json_response({"error": "job_ids must be a list"}, status=400)
        invalid = [i for i in ids if not jobs.is_canonical_uuid(i)]
        if invalid:
            return web.json_response({"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}, status=400)
        return web.json_response({"cancelled": [i for i in ids if cancel(i)]})
