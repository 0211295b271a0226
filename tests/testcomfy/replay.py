"""Replay a recorded ComfyUI transcript against a test server and compare everything.

Requests are re-sent in recorded order (placeholders substituted), each after the
WebSocket messages recorded before it was sent have arrived. HTTP answers are compared
request by request; each socket's messages are compared over the whole scenario.
Placeholders are wildcards that must bind consistently (``Binder``).
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
# A copy of ../shared/comfy/transcripts, kept in the repo so that a clone alone can run the
# contract tests; test_contract checks that the copy still equals the shared original.
TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
SHARED_TRANSCRIPTS = REPO_ROOT.parent / "shared" / "comfy" / "transcripts"
TRACKED_HEADERS = ("Content-Type", "Content-Disposition", "X-Content-Type-Options", "Cache-Control", "Vary")
PLACEHOLDER = re.compile(
    r"<(client_id|prompt_id:\d+|sid:\d+|uuid:\d+|uppercase_uuid|ts|number:n(?:\+\d+)?|total|rand5:\d+|comfy_root|site_packages|python_lib)>"
)
UNORDERED_KEYS = {"executed", "current_outputs"}


class Mismatch(AssertionError):
    """A difference between the recording and the server, with the JSON path where it is."""


class Binder:
    """Placeholder → real value, bound on first sight and checked on every later one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.number_base: int | None = None

    def resolve(self, name: str) -> Any:
        """A value for a placeholder used in a request (minting client-side ids)."""
        if name.startswith("number:"):
            assert self.number_base is not None
            return self.number_base + int(name.partition("+")[2] or 0)
        if name not in self.values:
            if name == "uppercase_uuid":
                self.values[name] = str(uuid.uuid4()).upper()
            elif name.startswith(("prompt_id", "uuid", "client_id")):
                self.values[name] = str(uuid.uuid4())
            else:
                raise KeyError(f"placeholder <{name}> used before it was bound")
        return self.values[name]

    def bind(self, name: str, actual: Any, path: str) -> None:
        if name == "ts" or name == "total":
            if type(actual) is not int:
                raise Mismatch(f"{path}: <{name}> must be an int, got {actual!r}")
            return
        if name.startswith("number:"):
            if type(actual) is not int:
                raise Mismatch(f"{path}: <{name}> must be an int, got {actual!r}")
            base = actual - int(name.partition("+")[2] or 0)
            if self.number_base is None:
                self.number_base = base
            elif self.number_base != base:
                raise Mismatch(f"{path}: queue number {actual} breaks <{name}> (n = {self.number_base})")
            return
        if name in self.values:
            if self.values[name] != actual:
                raise Mismatch(f"{path}: <{name}> was {self.values[name]!r}, now {actual!r}")
            return
        if name.startswith("sid:") and not re.fullmatch(r"[0-9a-f]{32}", str(actual)):
            raise Mismatch(f"{path}: sid {actual!r} is not 32 hex digits")
        if name.startswith("prompt_id") and not re.fullmatch(r"[0-9a-f-]{36}", str(actual)):
            raise Mismatch(f"{path}: prompt id {actual!r} is not a uuid")
        self.values[name] = actual

    def substitute(self, value: Any) -> Any:
        """Replace placeholders inside a request body or path."""
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                return self.resolve(whole.group(1))
            return PLACEHOLDER.sub(lambda m: str(self.resolve(m.group(1))), value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {self.substitute(k): self.substitute(v) for k, v in value.items()}
        return value

    def match_text(self, expected: str, actual: Any, path: str) -> None:
        whole = PLACEHOLDER.fullmatch(expected)
        if whole:
            self.bind(whole.group(1), actual, path)
            return
        if not isinstance(actual, str):
            raise Mismatch(f"{path}: expected string {expected!r}, got {actual!r}")
        names: list[str] = []
        pattern = ""
        pos = 0
        for m in PLACEHOLDER.finditer(expected):
            pattern += re.escape(expected[pos : m.start()])
            names.append(m.group(1))
            pattern += "(.+?)"
            pos = m.end()
        pattern += re.escape(expected[pos:])
        found = re.fullmatch(pattern, actual, flags=re.S)
        if not found:
            raise Mismatch(f"{path}: {actual!r} does not match {expected!r}")
        for name, value in zip(names, found.groups()):
            self.bind(name, value, path)

    def match(self, expected: Any, actual: Any, path: str = "$") -> None:
        """Key for key, order and type included; ``executed``/``current_outputs`` are sets."""
        if isinstance(expected, str):
            self.match_text(expected, actual, path)
        elif isinstance(expected, dict):
            if not isinstance(actual, dict):
                raise Mismatch(f"{path}: expected an object, got {actual!r}")
            exp_keys = list(expected)
            act_keys = list(actual)
            if len(exp_keys) != len(act_keys):
                raise Mismatch(f"{path}: keys {act_keys} != recorded {exp_keys}")
            for ek, ak in zip(exp_keys, act_keys):
                self.match_text(ek, ak, f"{path} key")
                self.match(expected[ek], actual[ak], f"{path}.{ak}")
        elif isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                raise Mismatch(f"{path}: expected list {expected!r}, got {actual!r}")
            if path.rsplit(".", 1)[-1] in UNORDERED_KEYS:
                expected = sorted(expected, key=str)
                actual = sorted(actual, key=str)
            for i, (e, a) in enumerate(zip(expected, actual)):
                self.match(e, a, f"{path}[{i}]")
        else:
            if type(expected) is not type(actual) or expected != actual:
                raise Mismatch(
                    f"{path}: expected {expected!r} ({type(expected).__name__}), got {actual!r} ({type(actual).__name__})"
                )


@dataclass
class Socket:
    """One recorded connection: what it should receive, and what it did receive."""

    label: str
    expected: list[dict[str, Any]] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None
    reader: asyncio.Task[None] | None = None


def load(name: str) -> tuple[str, list[dict[str, Any]]]:
    lines = [json.loads(line) for line in (TRANSCRIPTS / name).read_text().splitlines() if line.strip()]
    return lines[0]["note"], lines[1:]


# Uploaded images, regenerated from the descriptors and the notes ---------------------------
def _square_mask(width: int, height: int) -> np.ndarray:
    grey = np.zeros((height, width), dtype=np.uint8)
    grey[16:48, 8:40] = 255
    grey[16:48, 56:88] = 128
    return grey


def make_upload(filename: str, descriptor: str) -> bytes:
    """Bytes for a recorded file part (same descriptor → same bytes)."""
    raw = re.fullmatch(r"<(\d+) bytes (b'.*') sha256:\w+>", descriptor)
    if raw:
        return ast.literal_eval(raw.group(2))
    m = re.fullmatch(r"<png (\d+)x(\d+) (\w+) sha256:(\w+)>", descriptor)
    assert m, descriptor
    width, height, mode, sha = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
    if filename == "simple_src.png":
        arr = np.zeros((height, width, 3), dtype=np.uint8)
        h2, w2 = height // 2, width // 2
        arr[:h2, :w2] = (255, 0, 0)
        arr[:h2, w2:] = (0, 255, 0)
        arr[h2:, :w2] = (0, 0, 255)
        arr[h2:, w2:] = (64, 128, 192)
        img = Image.fromarray(arr, "RGB")
    elif filename in ("ma_mask.png", "ma_orphan.png"):
        arr = np.zeros((height, width, 4), dtype=np.uint8)
        arr[..., :3] = (10, 200, 30)
        arr[..., 3] = 255
        arr[16:48, 8:40, 3] = 0
        arr[16:48, 56:88, 3] = 128
        img = Image.fromarray(arr, "RGBA")
    elif filename == "mf_mask.png":
        img = Image.fromarray(_square_mask(width, height), "L")
    elif filename == "mf_mask_rgb.png":
        img = Image.fromarray(np.repeat(_square_mask(width, height)[..., None], 3, axis=2), "RGB")
    else:
        rng = np.random.default_rng(int(sha, 16))
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        arr = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def describe_image(body: bytes) -> tuple[str, int, int, str, list[str]]:
    img = Image.open(io.BytesIO(body))
    return img.format.lower(), img.width, img.height, img.mode, sorted(getattr(img, "text", {}) or {})


class Replayer:
    """Replays one transcript against ``base_url``; call ``await run()`` then inspect ``bodies``."""

    def __init__(self, base_url: str, events: list[dict[str, Any]], timeout: float = 15.0):
        self.base = base_url
        self.events = events
        self.timeout = timeout
        self.binder = Binder()
        self.sockets: dict[str, Socket] = {}
        self.bodies: dict[str, bytes] = {}  # substituted /view path → body
        self.uploads: dict[str, bytes] = {}  # recorded sha → bytes we sent
        self.errors: list[str] = []
        for event in events:
            if event.get("dir") == "ws":
                sock = self.sockets.setdefault(event.get("conn", "main"), Socket(event.get("conn", "main")))
                if "msg" in event or "binary" in event:
                    sock.expected.append(event)

    def _due(self, index: int, t_ms: float) -> dict[str, int]:
        """Per socket, how many messages recorded before event ``index`` arrived by ``t_ms``."""
        due: dict[str, int] = {}
        for event in self.events[:index]:
            if event.get("dir") == "ws" and ("msg" in event or "binary" in event) and event.get("t_ms", 0) <= t_ms:
                label = event.get("conn", "main")
                due[label] = due.get(label, 0) + 1
        return due

    async def _wait_for(self, due: dict[str, int], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            missing = {k: n for k, n in due.items() if len(self.sockets[k].received) < n}
            if not missing:
                return
            if loop.time() > deadline:
                got = {k: len(self.sockets[k].received) for k in missing}
                raise Mismatch(f"timed out before {what}: wanted {missing} messages, got {got}")
            await asyncio.sleep(0.005)

    async def _read(self, sock: Socket) -> None:
        assert sock.ws is not None
        async for msg in sock.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                sock.received.append(json.loads(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                sock.received.append(("binary", len(msg.data), int.from_bytes(msg.data[:4], "big")))

    async def run(self, session: aiohttp.ClientSession) -> None:
        for index, event in enumerate(self.events):
            if event.get("dir") == "ws":
                await self._ws_event(session, index, event)
            elif event.get("dir") == "http":
                await self._wait_for(self._due(index, event["sent_ms"]), f"{event['method']} {event['path']}")
                await self._http(session, event)
        await asyncio.sleep(0.3)  # anything extra that arrives now is a mismatch too
        for sock in self.sockets.values():
            if sock.ws is not None and not sock.ws.closed:
                await sock.ws.close()
            if sock.reader:
                await asyncio.wait_for(sock.reader, 5)
        for sock in self.sockets.values():
            self._compare_socket(sock)

    async def _ws_event(self, session: aiohttp.ClientSession, index: int, event: dict[str, Any]) -> None:
        label = event.get("conn", "main")
        sock = self.sockets[label]
        if "connect" in event:
            await self._wait_for(self._due(index, event["t_ms"]), f"connect {label}")
            sock.ws = await session.ws_connect(self.base + self.binder.substitute(event["connect"]))
            sock.reader = asyncio.create_task(self._read(sock))
        elif "send" in event:
            await self._wait_for(self._due(index, event["t_ms"]), f"send on {label}")
            assert sock.ws is not None
            await sock.ws.send_str(json.dumps(self.binder.substitute(event["send"])))
        elif event.get("close"):
            await self._wait_for(self._due(index, event["t_ms"]), f"close {label}")
            assert sock.ws is not None
            await sock.ws.close()
            if sock.reader:
                await asyncio.wait_for(sock.reader, 5)

    async def _http(self, session: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        path = self.binder.substitute(event["path"])
        request = event["request"]
        kwargs: dict[str, Any] = {}
        if isinstance(request, dict) and "multipart" in request:
            form = aiohttp.FormData()
            for part in request["multipart"]:
                if "filename" in part:
                    data = make_upload(part["filename"], part["content"])
                    sha = re.search(r"sha256:(\w+)", part["content"])
                    if sha:
                        self.uploads[sha.group(1)] = data
                        self.binder.bind(f"sha:{sha.group(1)}", hashlib.sha256(data).hexdigest()[:12], "upload")
                    form.add_field(part["name"], data, filename=part["filename"], content_type=part["content_type"])
                else:
                    form.add_field(part["name"], part["value"])
            kwargs["data"] = form
        elif isinstance(request, str) and request.startswith("<raw body> "):
            kwargs["data"] = request[len("<raw body> ") :].encode()
        elif request is not None:
            kwargs["data"] = json.dumps(self.binder.substitute(request)).encode()
        where = f"{event['method']} {event['path']}"
        async with session.request(event["method"], self.base + path, **kwargs) as response:
            body = await response.read()
            headers = {k: response.headers[k] for k in TRACKED_HEADERS if k in response.headers}
        if response.status != event["status"]:
            raise Mismatch(f"{where}: status {response.status} != recorded {event['status']} ({body[:300]!r})")
        self.binder.match(event["headers"], headers, f"{where} headers")
        self._compare_body(where, event["response"], body)
        if path.startswith("/view"):
            self.bodies[path] = body

    def _compare_body(self, where: str, expected: Any, body: bytes) -> None:
        if expected == "<empty>":
            if body:
                raise Mismatch(f"{where}: expected an empty body, got {body[:200]!r}")
        elif isinstance(expected, str) and expected.startswith("<text: "):
            if body.decode() != expected[len("<text: ") : -1]:
                raise Mismatch(f"{where}: text {body.decode()!r} != {expected!r}")
        elif isinstance(expected, str) and re.fullmatch(r"<(png|webp|jpeg) .*>", expected, flags=re.S):
            m = re.fullmatch(r"<(\w+) (\d+)x(\d+) (\w+)(?: text:([\w,]+))? sha256:(\w+)>", expected)
            assert m, expected
            fmt, width, height, mode, text = describe_image(body)
            want = (
                m.group(1),
                int(m.group(2)),
                int(m.group(3)),
                m.group(4),
                sorted((m.group(5) or "").split(",")) if m.group(5) else [],
            )
            if (fmt, width, height, mode, text) != want:
                raise Mismatch(f"{where}: image {(fmt, width, height, mode, text)} != recorded {want}")
            self.binder.bind(f"sha:{m.group(6)}", hashlib.sha256(body).hexdigest()[:12], where)
        else:
            try:
                actual = json.loads(body)
            except ValueError as exc:
                raise Mismatch(f"{where}: body is not JSON: {body[:200]!r}") from exc
            self.binder.match(expected, actual, where)

    def _compare_socket(self, sock: Socket) -> None:
        """Same messages in the same order; queue ``status`` broadcasts are compared as their own sequence
        because their interleaving with a running prompt's events depends on request timing."""

        def split(items: list[Any]) -> tuple[list[Any], list[Any]]:
            status = [
                i for i in items if isinstance(i, dict) and i.get("type") == "status" and "sid" not in i.get("data", {})
            ]
            other = [
                i
                for i in items
                if not (isinstance(i, dict) and i.get("type") == "status" and "sid" not in i.get("data", {}))
            ]
            return status, other

        expected = [e["msg"] if "msg" in e else ("binary", e["binary"], e["type"]) for e in sock.expected]
        exp_status, exp_other = split(expected)
        got_status, got_other = split(sock.received)
        for kind, exp, got in (("status", exp_status, got_status), ("events", exp_other, got_other)):
            for i, (e, g) in enumerate(zip(exp, got)):
                label = f"ws[{sock.label}] {kind}[{i}]"
                if isinstance(e, tuple) or isinstance(g, tuple):
                    if e != g:
                        raise Mismatch(f"{label}: expected {e}, got {g}")
                    continue
                self.binder.match(e, g, label)
            if len(exp) != len(got):
                extra = got[len(exp) :] if len(got) > len(exp) else exp[len(got) :]
                raise Mismatch(
                    f"ws[{sock.label}] {kind}: {len(got)} messages, recorded {len(exp)}; difference starts with {str(extra[:2])[:600]}"
                )
