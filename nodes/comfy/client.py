"""An async client for one ComfyUI server (HTTP with aiohttp, /ws with websockets).

Every call has a short connect timeout and a bounded read timeout, sends the node's
`auth_header` when one is set, and turns failures into the typed errors of `errors.py`.
aiohttp rather than httpx for HTTP: with it a job's POST /prompt and GET /view take a third of the CPU.
Imports no Django: it is the protocol, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import aiohttp
import websockets
from aiohttp.helpers import get_env_proxy_for_url
from websockets.proxy import get_proxy
from websockets.uri import parse_uri
from yarl import URL

from nodes.comfy.errors import BadResponse, NodeMisconfigured, NodeTimeout, NodeUnreachable, PromptRejected


@dataclass(frozen=True)
class Uploaded:
    """What /upload/image and /upload/mask answered: use `ref` as the LoadImage value."""

    name: str
    subfolder: str
    type: str

    @property
    def ref(self) -> str:
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


@dataclass(frozen=True)
class Accepted:
    prompt_id: str
    number: float
    node_errors: dict[str, Any]


@dataclass(frozen=True)
class QueueState:
    running: list[list]
    pending: list[list]

    @property
    def prompt_ids(self) -> set[str]:
        return {item[1] for item in self.running + self.pending}

    def foreign_count(self, client_prefix: str) -> int:
        """Prompts on the node that did not come from us (their client_id lacks our prefix)."""
        return sum(
            1
            for item in self.running + self.pending
            if not str(
                (item[3] if len(item) > 3 and isinstance(item[3], dict) else {}).get("client_id") or ""
            ).startswith(client_prefix)
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A node's HTTP answer, read in full: its connection is back in the pool already."""

    status: int
    headers: Mapping[str, str]
    body: bytes


_UNRESOLVED = object()
SOCKET_IDLE_MAX = 60.0  # a kept socket idle longer is closed (a proxy may have dropped it quietly)
SOCKETS_KEPT = 4  # idle sockets kept per node: enough for max_queue prompts in flight and one more


class PromptSocket:
    """A /ws connection under its own client id, for one prompt at a time (protocol §8: one
    id per connection). `reusable`: the prompt it followed ended on it cleanly, so it may
    serve the next prompt; else it is closed after use."""

    def __init__(self, client_id: str, ws: websockets.ClientConnection, exits: AsyncExitStack):
        self.client_id = client_id
        self.ws = ws
        self.reusable = False
        self._exits = exits
        self._drain: asyncio.Task | None = None
        self.idle_since = time.monotonic()

    @property
    def open(self) -> bool:
        return self.ws.state is websockets.State.OPEN

    def idle(self) -> None:
        """Read and drop what the node broadcasts while no prompt uses the socket (queue
        updates): unread frames would make the node buffer them."""
        self.reusable = False
        self.idle_since = time.monotonic()
        self._drain = asyncio.create_task(self._discard())

    async def take(self) -> None:
        if self._drain is not None:
            self._drain.cancel()  # recv() is cancel-safe: no frame is lost half-read
            await asyncio.gather(self._drain, return_exceptions=True)
            self._drain = None

    async def _discard(self) -> None:
        try:
            async for _ in self.ws:
                pass
        except websockets.ConnectionClosed:
            pass

    async def close(self) -> None:
        await self.take()
        await self._exits.aclose()


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one loads the CA store (tens of ms)."""
    return ssl.create_default_context()


def parse_auth_header(value: str | None) -> dict[str, str]:
    """`"Authorization: Bearer x"` → {"Authorization": "Bearer x"}; a bare value means Authorization."""
    if not value:
        return {}
    name, sep, rest = value.partition(":")
    if sep and name.strip() and " " not in name.strip():
        return {name.strip(): rest.strip()}
    return {"Authorization": value.strip()}


# The characters of a header name (RFC 9110's `token`).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def auth_header_problem(value: str | None) -> str | None:
    """Why `value` cannot be sent as the header `parse_auth_header` makes of it, or None.

    HTTP carries only printable ASCII in a header; anything else fails every request to the node."""
    if not value:
        return None
    if not (value.isascii() and value.isprintable()):
        return "must be printable ASCII text (HTTP headers cannot carry other characters)"
    ((name, _),) = parse_auth_header(value).items()
    if not _HEADER_NAME.fullmatch(name):
        return f"'{name}' is not a valid header name"
    return None


class ComfyClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        keep_sockets: bool = False,
        client_id_prefix: str = "",
    ):
        self.base_url = base_url.rstrip("/")
        # A header saved before it was checked at save: every request fails saying why, so
        # that health checks show it on the node instead of raising.
        self.header_problem = auth_header_problem(auth_header)
        self.headers = {} if self.header_problem else parse_auth_header(auth_header)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ws_proxy: str | None | object = _UNRESOLVED
        # keep_sockets: prompt sockets outlive their prompt and one is connected ahead, so that
        # a prompt never waits for a connection (see prompt_socket); their ids take the prefix.
        self.keep_sockets = keep_sockets
        self.client_id_prefix = client_id_prefix
        self._idle_sockets: list[PromptSocket] = []
        self._connecting: asyncio.Task | None = None
        # URLs are built already encoded (the /view query as urlencode writes it): aiohttp
        # would otherwise quote each one again.
        self._encoded_base = self.base_url
        self._url_problem: str | None = None  # a malformed URL saved before checks: said per request
        try:
            self._encoded_base = str(URL(self.base_url))
        except ValueError as exc:
            self._url_problem = f"{type(exc).__name__}: {exc}"
        self._timeout = self._timeouts(read_timeout)
        self._session: aiohttp.ClientSession | None = None  # made in the loop of the first request
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        self.keep_sockets = False
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        idle, self._idle_sockets = self._idle_sockets, []
        for sock in idle:
            await sock.close()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # --- HTTP plumbing -----------------------------------------------------------------
    def _check_settings(self) -> None:
        if self.header_problem:
            raise NodeMisconfigured(f"auth_header {self.header_problem}; set a new one for this node")

    def _timeouts(self, read: float) -> aiohttp.ClientTimeout:
        # As httpx's Timeout(read, connect=…): `read` bounds each wait for the answer's bytes, not
        # the whole answer (a large video from /view takes as long as its bytes keep coming);
        # `connect` bounds waiting for a pooled connection (`read`, as httpx) and making one.
        return aiohttp.ClientTimeout(
            total=None, connect=read + self.connect_timeout, sock_connect=self.connect_timeout, sock_read=read
        )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise RuntimeError(f"the client of {self.base_url} is closed")
            # The proxy from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), read once as
            # httpx did; aiohttp's trust_env would read it (and ~/.netrc) in a thread per request.
            with suppress(LookupError):
                self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(self._encoded_base))
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=5.0, ssl=tls_context()),
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        form: aiohttp.FormData | None = None,
    ) -> Answer:
        self._check_settings()
        if self._url_problem:
            raise NodeUnreachable(f"{self.base_url} is unreachable ({self._url_problem})")
        url = self._encoded_base + path + ("?" + urlencode(params) if params else "")
        headers = data = None
        if json_body is not None:  # encoded as httpx did: compact, UTF-8, no NaN
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            headers = {"Content-Type": "application/json"}
        elif form is not None:
            data = form
        try:
            async with self._http().request(
                method,
                URL(url, encoded=True),
                data=data,
                headers=headers,
                timeout=self._timeout if timeout is None else self._timeouts(timeout),
                allow_redirects=False,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as response:
                return Answer(status=response.status, headers=response.headers, body=await response.read())
        except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors
            raise NodeTimeout(f"{self.base_url} did not answer {method} {path} in time") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NodeUnreachable(f"{self.base_url} is unreachable ({_failure(exc)})") from exc

    async def _json(self, method: str, path: str, **kwargs) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status != 200:
            raise BadResponse(f"{method} {path} answered {response.status}", status=response.status)
        return _decode_json(response, f"{method} {path}")

    async def _control(self, path: str, body: dict | None) -> None:
        response = await self._request("POST", path, json_body=body if body is not None else {})
        if response.status != 200:
            raise BadResponse(f"POST {path} answered {response.status}", status=response.status)

    # --- Endpoints -----------------------------------------------------------------------
    async def system_stats(self, *, timeout: float | None = None) -> dict:
        data = await self._json("GET", "/system_stats", timeout=timeout)
        if not isinstance(data, dict) or "system" not in data or "devices" not in data:
            raise BadResponse("GET /system_stats is not a ComfyUI answer (no system/devices)")
        return data

    async def queue(self, *, timeout: float | None = None) -> QueueState:
        data = await self._json("GET", "/queue", timeout=timeout)
        if not isinstance(data, dict) or "queue_running" not in data:
            raise BadResponse("GET /queue is not a ComfyUI answer (no queue_running)")
        return QueueState(running=list(data["queue_running"]), pending=list(data.get("queue_pending", [])))

    async def object_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        data = await self._json("GET", "/object_info", timeout=timeout or max(self.read_timeout, 60))
        if not isinstance(data, dict):
            raise BadResponse("GET /object_info is not an object")
        return data

    async def model_folders(self, *, timeout: float | None = None) -> list:
        """GET /models: the model folder names (ComfyUI 0.33)."""
        data = await self._json("GET", "/models", timeout=timeout)
        if not isinstance(data, list):
            raise BadResponse("GET /models is not a list")
        return data

    async def model_files(self, folder: str, *, timeout: float | None = None) -> list:
        """GET /models/{folder}: its files, sub-folders included ("sdxl/x.safetensors")."""
        data = await self._json("GET", f"/models/{quote(folder, safe='')}", timeout=timeout)
        if not isinstance(data, list):
            raise BadResponse(f"GET /models/{folder} is not a list")
        return data

    async def submit_prompt(
        self, graph: dict, *, client_id: str, prompt_id: str, extra_data: dict | None = None
    ) -> Accepted:
        """POST /prompt. Raises PromptRejected on 400 (final), BadResponse on anything else odd."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        response = await self._request("POST", "/prompt", json_body=body)
        if response.status == 400:
            data = _decode_json(response, "POST /prompt")
            raise PromptRejected(data.get("error") or {}, data.get("node_errors") or {})
        if response.status != 200:
            raise BadResponse(f"POST /prompt answered {response.status}", status=response.status)
        data = _decode_json(response, "POST /prompt")
        return Accepted(
            prompt_id=data["prompt_id"], number=data.get("number", 0), node_errors=data.get("node_errors") or {}
        )

    async def history(self, prompt_id: str) -> dict | None:
        """The history entry of a finished prompt, or None while it is queued, running or unknown."""
        data = await self._json("GET", f"/history/{quote(prompt_id, safe='')}")
        if not isinstance(data, dict):
            raise BadResponse("GET /history is not an object")
        return data.get(prompt_id)

    async def view(self, filename: str, *, subfolder: str = "", type: str = "output") -> bytes:
        response = await self._request(
            "GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": type}
        )
        if response.status != 200:
            raise BadResponse(f"GET /view of {filename!r} answered {response.status}", status=response.status)
        return response.body

    async def upload_image(
        self,
        data: bytes,
        filename: str,
        *,
        subfolder: str = "",
        type: str = "input",
        overwrite: bool = False,
        content_type: str = "image/png",
    ) -> Uploaded:
        """Put a file in the node's input folder. Video and sound go the same way as pictures
        (LoadVideo.file and LoadAudio.audio then name it), with their own content type."""
        fields = {"type": type, "overwrite": "true" if overwrite else "false"}
        if subfolder:
            fields["subfolder"] = subfolder
        return await self._upload("/upload/image", data, filename, fields, content_type=content_type)

    async def upload_mask(
        self, data: bytes, filename: str, *, original: Uploaded, subfolder: str = "", overwrite: bool = False
    ) -> Uploaded:
        """Merge `data`'s alpha into an uploaded original (ComfyUI's mask editor route).

        The server answers 200 even when it wrote nothing (missing original), so this
        checks with /view that the merged file exists.
        """
        fields = {
            "type": "input",
            "overwrite": "true" if overwrite else "false",
            "original_ref": json.dumps(
                {"filename": original.name, "subfolder": original.subfolder, "type": original.type}
            ),
        }
        if subfolder:
            fields["subfolder"] = subfolder
        uploaded = await self._upload("/upload/mask", data, filename, fields)
        check = await self._request(
            "GET", "/view", params={"filename": uploaded.name, "subfolder": uploaded.subfolder, "type": uploaded.type}
        )
        if check.status != 200:
            raise BadResponse(f"/upload/mask answered but wrote nothing for {filename!r}", status=check.status)
        return uploaded

    async def _upload(
        self, path: str, data: bytes, filename: str, fields: dict[str, str], *, content_type: str = "image/png"
    ) -> Uploaded:
        # quote_fields=False: the file name goes as UTF-8, as httpx and browsers send it; aiohttp's
        # default would %-encode it all, and ComfyUI would save the file under that encoded name.
        form = aiohttp.FormData(quote_fields=False)
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("image", data, filename=_FORM_NAME_ESCAPE.sub(_percent, filename), content_type=content_type)
        response = await self._request("POST", path, form=form)
        if response.status != 200:
            raise BadResponse(f"POST {path} answered {response.status}", status=response.status)
        body = _decode_json(response, f"POST {path}")
        return Uploaded(name=body["name"], subfolder=body.get("subfolder") or "", type=body.get("type") or "input")

    async def delete_from_queue(self, prompt_ids: list[str]) -> None:
        await self._control("/queue", {"delete": list(prompt_ids)})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        await self._control("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    async def cancel(self, prompt_id: str) -> None:
        """Stop a prompt wherever it is: dequeue it if pending, interrupt it if running.

        Uses the targeted forms only, so that a cancel can never hit another prompt.
        """
        await self.delete_from_queue([prompt_id])
        await self.interrupt(prompt_id)

    # --- WebSocket ---------------------------------------------------------------------------
    @asynccontextmanager
    async def websocket(self, client_id: str) -> AsyncIterator[websockets.ClientConnection]:
        """Open /ws?clientId=… (connect before posting the prompt that carries this client id)."""
        self._check_settings()
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = urlunsplit((scheme, parts.netloc, f"{parts.path}/ws", f"clientId={client_id}", ""))
        if self._ws_proxy is _UNRESOLVED:  # the system's proxy settings, read once per node, not per job
            self._ws_proxy = get_proxy(parse_uri(url))
        try:
            connection = await websockets.connect(
                url,
                proxy=self._ws_proxy,
                ssl=tls_context() if scheme == "wss" else None,
                additional_headers=self.headers or None,
                open_timeout=self.connect_timeout,
                ping_interval=20,
                ping_timeout=20,
                max_size=64 * 1024 * 1024,
                close_timeout=1,
                compression=None,  # small JSON frames on a LAN: deflate costs CPU on both ends, saves nothing
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise NodeUnreachable(f"{self.base_url} refused the WebSocket ({type(exc).__name__}: {exc})") from exc
        try:
            yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def prompt_socket(self, client_id: str) -> AsyncIterator[PromptSocket]:
        """A socket to follow one prompt on; post the prompt under its `client_id`.

        Without keep_sockets: a new connection under `client_id`, closed after use. With it:
        a socket kept from an earlier prompt or connected ahead (under its own id), else a new
        one; a socket whose prompt ended cleanly on it is kept for the next prompt, and one is
        connected ahead whenever none is idle."""
        sock = await self._idle_socket() if self.keep_sockets else None
        if sock is None:
            sock = await self._open_socket(client_id)
        self._connect_ahead()
        try:
            yield sock
        finally:
            if self.keep_sockets and sock.reusable and sock.open and len(self._idle_sockets) < SOCKETS_KEPT:
                sock.idle()
                self._idle_sockets.append(sock)
            else:
                await sock.close()

    async def _idle_socket(self) -> PromptSocket | None:
        while self._idle_sockets:
            sock = self._idle_sockets.pop()  # the most recent: the least likely to be stale
            await sock.take()
            if sock.open and time.monotonic() - sock.idle_since < SOCKET_IDLE_MAX:
                return sock
            await sock.close()
        return None

    async def _open_socket(self, client_id: str) -> PromptSocket:
        exits = AsyncExitStack()
        try:
            ws = await exits.enter_async_context(self.websocket(client_id))
        except BaseException:
            await exits.aclose()
            raise
        return PromptSocket(client_id, ws, exits)

    def _connect_ahead(self) -> None:
        if self.keep_sockets and not self._idle_sockets and (self._connecting is None or self._connecting.done()):
            self._connecting = asyncio.create_task(self._add_spare_socket())

    async def _add_spare_socket(self) -> None:
        try:
            sock = await self._open_socket(f"{self.client_id_prefix}{uuid.uuid4().hex}")
        except NodeUnreachable:  # the next prompt connects itself, and says why it cannot
            return
        if self.keep_sockets and len(self._idle_sockets) < SOCKETS_KEPT:
            sock.idle()
            self._idle_sockets.append(sock)
        else:
            await sock.close()


def _failure(exc: BaseException) -> str:
    """Why a request failed, for the node's status: a failed connect in the system's words
    (aiohttp's own text wraps them as "host:port ssl:default [[Errno 111] …]")."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    return f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"


def decode_ws_message(frame: str | bytes) -> tuple[str, dict] | None:
    """A text frame as (type, data); None for binary frames (previews, text) we do not use."""
    if isinstance(frame, bytes):
        return None
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    return str(message.get("type")), message.get("data") or {}


# What HTML5 form-data (and httpx) escapes in a file name: `"` and control characters, as %XX
# (aiohttp escapes a backslash itself): a newline in a name must not end the part's header.
_FORM_NAME_ESCAPE = re.compile(r'["\x00-\x1a\x1c-\x1f]')


def _percent(match: re.Match) -> str:
    return f"%{ord(match.group()):02X}"


def _decode_json(response: Answer, what: str) -> Any:
    try:
        return json.loads(response.body)
    except ValueError as exc:
        kind = response.headers.get("content-type", "unknown type")
        text = response.body[:320].decode("utf-8", errors="replace")
        raise BadResponse(f"{what} answered {kind} that is not JSON: {text[:80]!r}") from exc
