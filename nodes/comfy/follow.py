"""Run one prompt on one node and follow it to the end.

Follows `/ws` for progress and the end signal (`executing` with `node: null` and our
prompt_id), and falls back to polling `/history` and `/queue` when the socket drops or stays
silent, because ComfyUI buffers nothing for a socket that is not there (protocol §8).
Returns the history entry on success; raises the typed errors of `errors.py` otherwise. A
prompt whose every event the socket carried (`execution_start` to `execution_success`) gets
its entry from the `executed` messages, which carry what history lists under `outputs`: no
`/history` request on the common path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets

from nodes.comfy.client import ComfyClient, decode_ws_message
from nodes.comfy.errors import (
    ComfyError,
    ExecutionFailed,
    Interrupted,
    NodeUnreachable,
    PromptLost,
    PromptPartlyRejected,
    PromptUnknown,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    fraction: float  # the whole prompt, 0..1, never going back
    text: str  # "KSampler 12/20" — what runs now, for people
    sent_at: float | None = None  # the node's own clock is unknown: when we received it


def node_weights(graph: dict[str, Any]) -> dict[str, float]:
    """How much of a prompt's time each node stands for: a sampler's steps, else 1."""
    weights = {}
    for node_id, node in graph.items():
        inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
        steps = inputs.get("steps")
        is_sampler = "Sampler" in str(node.get("class_type", "")) if isinstance(node, dict) else False
        weights[str(node_id)] = float(steps) if is_sampler and isinstance(steps, int) and steps > 0 else 1.0
    return weights


class ProgressTracker:
    def __init__(self, graph: dict[str, Any]):
        self.graph = graph
        self.weights = node_weights(graph)
        self.total = sum(self.weights.values()) or 1.0
        self.done: set[str] = set()
        self.current: str | None = None
        self.current_fraction = 0.0
        self.best = 0.0

    def _label(self, node_id: str | None) -> str:
        node = self.graph.get(str(node_id), {}) if node_id is not None else {}
        title = (node.get("_meta") or {}).get("title") if isinstance(node, dict) else None
        return title or (node.get("class_type") if isinstance(node, dict) else None) or str(node_id or "")

    def on_cached(self, nodes: list[str]) -> None:
        self.done.update(str(n) for n in nodes)

    def on_executing(self, node_id: str) -> Progress:
        if self.current is not None and self.current != node_id:
            self.done.add(self.current)
        self.current, self.current_fraction = str(node_id), 0.0
        return self._progress(self._label(node_id))

    def on_progress(self, node_id: str | None, value: float, maximum: float) -> Progress:
        if node_id is not None:
            self.current = str(node_id)
        self.current_fraction = max(0.0, min(1.0, value / maximum)) if maximum else 0.0
        return self._progress(f"{self._label(self.current)} {int(value)}/{int(maximum)}")

    def _progress(self, text: str) -> Progress:
        done = sum(self.weights.get(n, 1.0) for n in self.done if n != self.current)
        current = self.weights.get(self.current or "", 1.0) * self.current_fraction if self.current else 0.0
        # Stop short of 1.0: the job is complete only once its outputs are stored.
        self.best = max(self.best, min(0.99, (done + current) / self.total))
        return Progress(fraction=round(self.best, 4), text=text)


ProgressCallback = Callable[[Progress], Awaitable[None]]
# The events a node sends about a prompt to its client (comfyui-protocol.md, section 8).
PROMPT_EVENTS = frozenset(
    {
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)


EXECUTION_ENDS = frozenset({"execution_success", "execution_error", "execution_interrupted"})


class PromptRun:
    """One prompt on one node. `run()` submits then follows; `resume()` follows one already sent."""

    def __init__(
        self,
        client: ComfyClient,
        graph: dict[str, Any],
        *,
        prompt_id: str,
        client_id: str,
        on_progress: ProgressCallback | None = None,
        on_submitted: Callable[[], Awaitable[None]] | None = None,
        on_finished: Callable[[], Awaitable[None]] | None = None,
        poll_interval: float = 1.0,
        silent_poll_after: float = 5.0,
        max_poll_failures: int = 3,
    ):
        self.client = client
        self.graph = graph
        self.prompt_id = prompt_id
        self.client_id = client_id
        self.on_progress = on_progress
        self.on_submitted = on_submitted
        self.on_finished = on_finished
        self.poll_interval = poll_interval
        self.silent_poll_after = silent_poll_after
        self.max_poll_failures = max_poll_failures
        self.tracker = ProgressTracker(graph)
        self.submitted = False
        # The node's own clock (epoch ms) at execution_start and at the prompt's end, as its
        # socket or its history said: the job's GPU time (see execution_seconds).
        self.execution_started_ms: float | None = None
        self.execution_ended_ms: float | None = None
        # What the socket said of the prompt: its output nodes' `executed` outputs, and whether it
        # carried the whole run (start and success seen, never dropped in between).
        self.socket_outputs: dict[str, dict] = {}
        self.socket_saw_start = False
        self.socket_saw_success = False
        self.socket_dropped = False
        self.socket_saw_end = False  # `executing {node: null}` for our prompt came on the socket

    async def run(self) -> dict:
        """Take a socket (`ComfyClient.prompt_socket`), POST the prompt under its client id,
        follow it; return the history entry.

        A prompt the node accepts only in part (200 with `node_errors`) is withdrawn from the
        node and raised as PromptPartlyRejected: its surviving branch is not the job's result."""
        try:
            async with self.client.prompt_socket(self.client_id) as sock:
                self.client_id = sock.client_id  # a socket kept or connected ahead has its own
                accepted = await self.client.submit_prompt(
                    self.graph, client_id=self.client_id, prompt_id=self.prompt_id
                )
                self.submitted = True
                if accepted.node_errors:
                    await self._withdraw()
                    raise PromptPartlyRejected(accepted.node_errors)
                if self.on_submitted is not None:
                    await self.on_submitted()
                entry = await self._follow(sock.ws)
                # Our prompt's last event came on it: the next prompt may use it.
                sock.reusable = self.socket_saw_end and not self.socket_dropped
                return entry
        except NodeUnreachable:
            if not self.submitted:
                raise
            return await self._follow(None)  # the socket died after the prompt was accepted

    async def _withdraw(self) -> None:
        """Stop our prompt on the node, pending or running; never another prompt (protocol §4)."""
        try:
            await self.client.cancel(self.prompt_id)
        except ComfyError as exc:  # the job fails all the same; the node's copy may run on
            logger.warning("cannot withdraw %s from %s: %s", self.prompt_id, self.client.base_url, exc)

    async def resume(self) -> dict:
        """Follow a prompt sent earlier (by a runner that died): history, queue, then the socket.

        Raises PromptUnknown, before following anything, if the node has no trace of it."""
        self.submitted = True
        entry = await self.client.history(self.prompt_id)
        if entry is not None:
            return self._finish(entry)
        if self.prompt_id not in (await self.client.queue()).prompt_ids:
            raise PromptUnknown(f"the node does not know prompt {self.prompt_id} (restarted or cleared)")
        try:
            async with self.client.websocket(self.client_id) as ws:
                return await self._follow(ws)
        except NodeUnreachable:
            return await self._follow(None)

    async def _follow(self, ws) -> dict:
        clock = asyncio.get_running_loop().time
        heard_at = clock()  # when the socket last said something about our prompt
        poll_failures = 0
        while True:
            if ws is not None:
                try:
                    async with asyncio.timeout(self.poll_interval):  # no task per frame, unlike wait_for
                        frame = await ws.recv()
                except TimeoutError:
                    pass
                except websockets.ConnectionClosed:
                    logger.info("socket to %s closed during %s; polling", self.client.base_url, self.prompt_id)
                    ws = None
                    self.socket_dropped = True
                else:
                    done = await self._on_frame(frame)
                    if done:
                        self.socket_saw_end = True
                        await self._node_finished()
                        entry = self._entry_from_socket()
                        return entry if entry is not None else await self._history_after_end()
                    if done is not None:
                        heard_at = clock()
                # Queue updates and other prompts' events are no news of ours: a prompt that ended
                # while its socket was opening (a resumed job) must not wait for the node to fall quiet.
                if ws is not None and clock() - heard_at < self.silent_poll_after:
                    continue
            # No socket, or one silent about our prompt: ask the node directly.
            heard_at = clock()
            try:
                entry = await self.client.history(self.prompt_id)
                if entry is not None:
                    await self._node_finished()
                    return self._finish(entry)
                queued = self.prompt_id in (await self.client.queue()).prompt_ids
                poll_failures = 0
            except ComfyError as exc:
                if not exc.transient:
                    raise
                poll_failures += 1
                if poll_failures >= self.max_poll_failures:
                    raise
                await asyncio.sleep(self.poll_interval)
                continue
            if not queued:
                entry = await self.client.history(self.prompt_id)  # it may have ended in between
                if entry is not None:
                    return self._finish(entry)
                raise PromptLost(f"the node dropped prompt {self.prompt_id} (restarted or cleared)")
            if ws is None:
                await asyncio.sleep(self.poll_interval)

    async def _on_frame(self, frame) -> bool | None:
        """Handle one socket frame: True when the prompt is over, None when the frame is not
        about it (queue status, another prompt's events, previews)."""
        decoded = decode_ws_message(frame)
        if decoded is None:
            return None
        kind, data = decoded
        prompt_id = data.get("prompt_id")
        if (prompt_id is not None and prompt_id != self.prompt_id) or kind not in PROMPT_EVENTS:
            return None
        self._note_time(kind, data)
        if kind == "execution_start":
            self.socket_saw_start = True
        elif kind == "execution_success":
            self.socket_saw_success = True
        elif kind == "executed" and isinstance(data.get("output"), dict) and data.get("node") is not None:
            self.socket_outputs[str(data["node"])] = data["output"]
        if kind == "execution_cached":
            self.tracker.on_cached(data.get("nodes") or [])
        elif kind == "executing":
            if data.get("node") is None:
                return prompt_id == self.prompt_id
            await self._emit(self.tracker.on_executing(str(data["node"])))
        elif kind == "progress":
            await self._emit(self.tracker.on_progress(data.get("node"), data.get("value", 0), data.get("max", 0)))
        elif kind == "execution_error" and data.get("exception_type") != "ExecutionBlocked":
            raise _execution_failed(data)
        elif kind == "execution_interrupted":
            raise Interrupted(f"prompt {self.prompt_id} was interrupted on node {data.get('node_id')}")
        return False

    async def _emit(self, progress: Progress) -> None:
        if self.on_progress is not None:
            await self.on_progress(progress)

    def _entry_from_socket(self) -> dict | None:
        """The history entry of a prompt the socket followed from start to success, made of its
        `executed` messages (history's `outputs` are those same dicts); None if the socket may
        have missed some of it (opened late, dropped, or no success seen): then ask history."""
        if not (self.socket_saw_start and self.socket_saw_success) or self.socket_dropped:
            return None
        return {"outputs": dict(self.socket_outputs), "status": {"status_str": "success", "completed": True}}

    async def _history_after_end(self) -> dict:
        # History is written before `executing {node: null}`; retry briefly all the same.
        for _ in range(10):
            entry = await self.client.history(self.prompt_id)
            if entry is not None:
                return self._finish(entry)
            await asyncio.sleep(0.1)
        raise PromptLost(f"prompt {self.prompt_id} ended but the node has no history for it")

    def _finish(self, entry: dict) -> dict:
        for kind, data in (entry.get("status") or {}).get("messages") or []:
            if isinstance(data, dict):
                self._note_time(kind, data)
        return finished_entry(entry, self.prompt_id)

    def _note_time(self, kind: str, data: dict) -> None:
        stamp = data.get("timestamp")
        if not isinstance(stamp, int | float) or isinstance(stamp, bool) or stamp <= 0:
            return
        if kind == "execution_start":
            self.execution_started_ms = float(stamp)
        elif kind in EXECUTION_ENDS:
            self.execution_ended_ms = float(stamp)

    @property
    def execution_seconds(self) -> float | None:
        """How long the node executed the prompt, by its own clock (None if it never said)."""
        if self.execution_started_ms is None or self.execution_ended_ms is None:
            return None
        return max(0.0, (self.execution_ended_ms - self.execution_started_ms) / 1000.0)

    async def _node_finished(self) -> None:
        if self.on_finished is not None:
            await self.on_finished()


def finished_entry(entry: dict, prompt_id: str) -> dict:
    """Return a history entry that ended in success; raise what ended it otherwise."""
    status = entry.get("status") or {}
    if status.get("status_str") == "success" or status.get("completed"):
        return entry
    for name, data in reversed(status.get("messages") or []):
        if name == "execution_error":
            raise _execution_failed(data)
        if name == "execution_interrupted":
            raise Interrupted(f"prompt {prompt_id} was interrupted on node {data.get('node_id')}")
    raise ExecutionFailed(exception_message="the node reported an error without details")


def _execution_failed(data: dict) -> ExecutionFailed:
    return ExecutionFailed(
        exception_message=data.get("exception_message", ""),
        exception_type=data.get("exception_type", ""),
        node_type=data.get("node_type", ""),
        node_id=data.get("node_id", ""),
    )


# Where a history entry lists files: pictures, video and animations under "images" (with
# "animated": [true] beside them), sound under "audio"; custom nodes such as VideoHelperSuite
# use "gifs" and "video".
FILE_KEYS = ("images", "gifs", "video", "audio")


def output_images(entry: dict) -> list[dict]:
    """Every file a history entry lists: [{filename, subfolder, type, node, listed_as, animated}].

    ``listed_as`` is the key it came under; ``animated`` says the node called its files
    animated. Neither is proof of what a file holds: the portal reads that from the bytes."""
    files = []
    for node_id, output in (entry.get("outputs") or {}).items():
        output = output if isinstance(output, dict) else {}
        animated = output.get("animated")
        animated = bool(animated[0]) if isinstance(animated, list) and animated else False
        for key in FILE_KEYS:
            for item in output.get(key) or []:
                if isinstance(item, dict) and item.get("filename"):
                    files.append({**item, "node": str(node_id), "listed_as": key, "animated": animated})
    return files
