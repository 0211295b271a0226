"""The worker: runs queued prompts one at a time and emits ComfyUI's event sequence.

Per prompt: execution_start, execution_cached, then per node progress_state(running),
executing, [progress…], [executed], progress_state(finished); then execution_success or
execution_error/execution_interrupted; the history write (status broadcast); and last
``executing {node: null}``. Node functions run in a thread so HTTP stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL

from .catalog import Catalog
from .faults import Faults
from .files import Folders
from .graph import ExecutionList, OutputCache
from .hub import Hub
from .models import ModelMemory
from .nodes import NodeContext, run_node, sampler_steps
from .queue import PromptQueue
from .validation import frame, full_type_name

log = logging.getLogger("testcomfy.executor")


class Interrupted(Exception):
    """ComfyUI's InterruptProcessingException."""


class InjectedError(RuntimeError):
    """The run-time failure injected by the ``execution_error`` fault."""


InjectedError.__module__ = "builtins"
InjectedError.__qualname__ = "RuntimeError"


def now_ms() -> int:
    return int(time.time() * 1000)


def execution_frames(root: str) -> list[str]:
    """The four execution.py frames every real run-time traceback starts with."""
    a = (
        "output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, "
        "input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)"
    )
    b = (
        "return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, "
        "allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)"
    )
    path = f"{root}/execution.py"
    return [
        frame(path, 545, "execute", a, "caret"),
        frame(path, 344, "get_output_data", b, "caret"),
        frame(path, 318, "_async_map_node_over_list", "await process_inputs(input_dict, i)"),
        frame(path, 306, "process_inputs", "result = f(**inputs)", "             ^^^^^^^^^^^"[4:]),
    ]


def pil_open_frames(root: str) -> list[str]:
    """The frames of LoadImage failing inside PIL.Image.open (as recorded)."""
    site = os.path.dirname(os.path.dirname(PIL.__file__))
    return [
        frame(f"{root}/nodes.py", 1765, "load_image", "img = node_helpers.pillow(Image.open, image_path)", "caret"),
        frame(f"{root}/node_helpers.py", 62, "pillow", "x = fn(arg)", "caret"),
        frame(f"{site}/PIL/Image.py", 3730, "open", "raise UnidentifiedImageError(msg)"),
    ]


def format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    if isinstance(value, np.ndarray):
        return f"tensor(shape={list(value.shape)}, dtype=torch.float32)"
    return str(value)


class Progress:
    """ComfyUI's progress registry: every started node, sent whole as ``progress_state``."""

    def __init__(self, prompt_id: str, send: Callable[[str, Any], None]):
        self.prompt_id = prompt_id
        self.send = send
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def _emit(self) -> None:
        nodes = {
            nid: {
                "value": e["value"],
                "max": e["max"],
                "state": e["state"],
                "node_id": nid,
                "prompt_id": self.prompt_id,
                "display_node_id": nid,
                "parent_node_id": None,
                "real_node_id": nid,
            }
            for nid, e in self.nodes.items()
            if e["state"] != "pending"
        }
        self.send("progress_state", {"prompt_id": self.prompt_id, "nodes": nodes})

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._emit()

    def update(self, node_id: str, value: Any, maximum: Any) -> None:
        self._entry(node_id).update(state="running", value=value, max=maximum)
        self._emit()

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._emit()


class Executor:
    """Owns the cache and runs the worker loop over a PromptQueue."""

    def __init__(
        self,
        queue: PromptQueue,
        hub: Hub,
        catalog: Catalog,
        folders: Folders,
        faults: Faults,
        *,
        cache_enabled: bool,
        cache_limit_bytes: int,
        disable_metadata: bool,
        on_die: Callable[[], None],
        model_memory: ModelMemory | None = None,
    ):
        self.queue = queue
        self.hub = hub
        self.catalog = catalog
        self.folders = folders
        self.faults = faults
        self.disable_metadata = disable_metadata
        self.on_die = on_die
        self.model_memory = model_memory or ModelMemory()
        self.cache = OutputCache(catalog, self._is_changed, enabled=cache_enabled, limit_bytes=cache_limit_bytes)
        self.preview_suffixes: dict[str, str] = {}
        self.interrupt_flag = False
        self.interrupt_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # control ---------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def interrupt(self) -> None:
        self.interrupt_flag = True
        self.interrupt_event.set()

    def _is_changed(self, class_type: str, inputs: dict[str, Any]) -> Any:
        if class_type in ("LoadImage", "LoadImageMask", "LoadImageOutput") and isinstance(inputs.get("image"), str):
            return self.folders.file_hash(inputs["image"])
        name = {"LoadAudio": "audio", "LoadVideo": "file"}.get(class_type)
        if name and isinstance(inputs.get(name), str):
            return self.folders.file_hash(inputs[name])
        return None

    def _preview_suffix(self, node_id: str) -> str:
        if node_id not in self.preview_suffixes:
            self.preview_suffixes[node_id] = "_temp_" + "".join(
                random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5)
            )
        return self.preview_suffixes[node_id]

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early on interrupt."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self.interrupt_event.wait(), seconds)
        except TimeoutError:
            pass

    async def _worker(self) -> None:
        while True:
            await self.queue.not_empty.wait()
            flags = self.queue.take_flags()
            if flags.get("unload_models") or flags.get("free_memory"):
                self.model_memory.forget()
            if flags.get("free_memory"):
                self.cache.clear()
                self.preview_suffixes.clear()
            await self.faults.gate()
            got = self.queue.get()
            if got is None:
                continue
            item, task_id = got
            try:
                await self._execute(item, task_id)
            except Exception:  # never let one prompt kill the worker
                log.exception("prompt crashed the test executor")
                if task_id in self.queue.running:
                    self.queue.task_done(
                        task_id,
                        {"outputs": {}, "meta": {}},
                        {"status_str": "error", "completed": False, "messages": []},
                    )

    # one prompt -----------------------------------------------------------
    async def _execute(self, item: tuple, task_id: int) -> None:
        _, prompt_id, prompt, extra_data, outputs = item[:5]
        client_id = extra_data.get("client_id")
        hub = self.hub
        hub.client_id = client_id
        self.interrupt_flag = False
        self.interrupt_event.clear()
        started = time.monotonic()
        job_time = float(self.faults.state["job_time"] or 0)
        messages: list[list[Any]] = []

        def add_message(event: str, data: dict[str, Any], broadcast: bool) -> None:
            data = {**data, "timestamp": now_ms()}
            messages.append([event, data])
            if client_id is not None or broadcast:
                hub.send_sync(event, data, client_id)

        add_message("execution_start", {"prompt_id": prompt_id}, False)
        self.cache.set_prompt(prompt)
        cached = {n: e for n in prompt if (e := self.cache.get(n)) is not None}
        add_message("execution_cached", {"nodes": list(cached), "prompt_id": prompt_id}, False)
        # Loading files the node does not hold (testcomfy.models) comes on top of job_time.
        await self._sleep(self.model_memory.switch(prompt))
        started = time.monotonic()
        progress = Progress(prompt_id, lambda ev, data: hub.send_sync(ev, data, client_id))
        elist = ExecutionList(prompt, self.catalog, lambda n: n in cached)
        for o in outputs:
            elist.add_node(o)
        to_run = [n for n in elist.pending if n not in cached]
        die_at = len(to_run) // 2 if self.faults.take_die() else None
        inject_error = self.faults.take_execution_error()
        if die_at is not None and not to_run:
            self.on_die()
        results: dict[str, tuple[Any, ...]] = {n: e.outputs for n, e in cached.items()}
        ui_outputs: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        failure: tuple[dict[str, Any], BaseException] | None = None
        ran = 0
        while not elist.is_empty():
            await self.faults.gate()
            node_id = elist.stage()
            node = prompt[node_id]
            entry = cached.get(node_id)
            if entry is not None:
                if client_id is not None:
                    hub.send_sync(
                        "executed",
                        {
                            "node": node_id,
                            "display_node": node_id,
                            "output": (entry.ui or {}).get("output"),
                            "prompt_id": prompt_id,
                        },
                        client_id,
                    )
                if entry.ui is not None:
                    ui_outputs[node_id] = entry.ui
                progress.finish(node_id)
                elist.complete()
                continue
            progress.start(node_id)
            if client_id is not None:
                hub.last_node_id = node_id
                hub.send_sync(
                    "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, client_id
                )
            if die_at is not None and ran == die_at:
                await asyncio.sleep(0.05)  # let the events out, as a crash mid-node would
                self.on_die()
            remaining = max(0.0, started + job_time - time.monotonic()) / max(1, len(to_run) - ran)
            ran += 1
            values: dict[str, Any] = {}
            try:
                for name, value in node["inputs"].items():
                    values[name] = results[value[0]][value[1]] if isinstance(value, list) else value
                if self.interrupt_flag:
                    raise Interrupted()
                if inject_error:
                    inject_error = False
                    raise InjectedError("testcomfy: injected execution error (fault execution_error)")
                await self._simulate_work(
                    node["class_type"], values, remaining, node_id, prompt_id, progress, client_id
                )
                ctx = NodeContext(
                    node_id,
                    node["class_type"],
                    prompt_id,
                    prompt,
                    extra_data,
                    self.folders,
                    hub.send_text,
                    self._preview_suffix,
                    self.disable_metadata,
                    self.catalog.raw(node["class_type"]),
                )
                out = await asyncio.to_thread(run_node, ctx, values)
            except Interrupted as ex:
                failure = ({"node_id": node_id}, ex)
                break
            except Exception as ex:
                failure = (self._error_details(node_id, node, values, ex), ex)
                break
            results[node_id] = out.result
            if out.ui:
                meta = {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
                ui_outputs[node_id] = {"output": out.ui, "meta": meta}
                if client_id is not None:
                    hub.send_sync(
                        "executed",
                        {"node": node_id, "display_node": node_id, "output": out.ui, "prompt_id": prompt_id},
                        client_id,
                    )
            self.cache.set(node_id, out.result, ui_outputs.get(node_id))
            progress.finish(node_id)
            executed.append(node_id)
            elist.complete()
        if failure is None:
            await self._sleep(started + job_time - time.monotonic())
            add_message("execution_success", {"prompt_id": prompt_id}, False)
        else:
            details, ex = failure
            node_id = details["node_id"]
            base = {
                "prompt_id": prompt_id,
                "node_id": node_id,
                "node_type": prompt[node_id]["class_type"],
                "executed": list(reversed(executed)),
            }
            if isinstance(ex, Interrupted):
                add_message("execution_interrupted", base, True)
            else:
                add_message(
                    "execution_error",
                    {**base, **{k: v for k, v in details.items() if k != "node_id"}, "current_outputs": list(prompt)},
                    False,
                )
        history_result = {
            "outputs": {n: u["output"] for n, u in ui_outputs.items()},
            "meta": {n: u["meta"] for n, u in ui_outputs.items()},
        }
        status = {
            "status_str": "success" if failure is None else "error",
            "completed": failure is None,
            "messages": messages,
        }
        self.queue.task_done(task_id, history_result, status)
        if client_id is not None:
            hub.send_sync("executing", {"node": None, "prompt_id": prompt_id}, client_id)
        hub.client_id = None
        hub.last_node_id = None

    async def _simulate_work(
        self,
        class_type: str,
        values: dict[str, Any],
        share: float,
        node_id: str,
        prompt_id: str,
        progress: Progress,
        client_id: str | None,
    ) -> None:
        """Samplers sleep per step and report progress; with job_time, other nodes sleep their share."""
        steps = sampler_steps(class_type, values)
        if not steps:
            await self._sleep(share)
            return
        step_time = max(float(self.faults.state["step_time"]), share / steps)
        for i in range(1, steps + 1):
            await self._sleep(step_time)
            if self.interrupt_flag:
                raise Interrupted()
            progress.update(node_id, i, steps)
            self.hub.send_sync(
                "progress", {"value": i, "max": steps, "prompt_id": prompt_id, "node": node_id}, client_id
            )

    def _error_details(
        self, node_id: str, node: dict[str, Any], values: dict[str, Any], ex: Exception
    ) -> dict[str, Any]:
        root = self.folders.root
        frames = execution_frames(root)
        if isinstance(ex, PIL.UnidentifiedImageError):
            frames += pil_open_frames(root)
        elif not isinstance(ex, InjectedError):
            frames += traceback.format_tb(ex.__traceback__)[-2:]
        else:
            frames.append(frame(f"{root}/comfy/model_management.py", 1, "inject_fault", "raise RuntimeError(msg)"))
        return {
            "node_id": node_id,
            "exception_message": f"{ex}\n",
            "exception_type": full_type_name(ex),
            "traceback": frames,
            "current_inputs": {k: [format_value(v)] for k, v in values.items()},
        }
