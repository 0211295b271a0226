"""What a job sends to its node and brings back: input files (images, masks, video, sound) up,
output files down.

Async functions that take the node's client; no database (the follower reads the inputs and
stores the results through `jobs.steps`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from weakref import WeakKeyDictionary

from jobs import files, imaging
from jobs.models import Job, JobFile
from nodes.comfy.client import ComfyClient, Uploaded
from nodes.comfy.follow import output_images

INPUTS_REMEMBERED = 10_000  # content-named inputs a client remembers having put on its node


async def upload_inputs(
    client: ComfyClient,
    job: Job,
    records: dict[str, tuple[JobFile, bytes | None]],
    *,
    reused: list[str] | None = None,
) -> dict[str, str]:
    """Send the job's images and masks to the node; return {field id: name to put in the graph}.
    `records`: {field id: (its file, its bytes, or None to read them if they must be sent)}.

    Images, video and sound are named by their content (`cp_<sha256>`) and sent once per node:
    a file this client has put there already is not sent again, and its name goes to `reused`
    (if the node refuses the prompt for it, it lost the file: see `lost_inputs`). An image a
    mask in alpha mode is merged into is sent every time under its own name, as before.
    """
    fields = {f["id"]: f for f in job.workflow.spec.get("inputs", [])}
    alpha_originals = {
        f.get("for_image") for f in fields.values() if f.get("type") == "mask" and f.get("mode") == "alpha"
    }
    uploaded: dict[str, str] = {}
    image_uploads = {}
    for field_id, field in fields.items():
        if field.get("type") in ("image", "video", "audio") and field_id in records:
            record, data = records[field_id]
            kind = record.content_type if field["type"] != "image" else "image/png"
            if field_id in alpha_originals:  # its own name: the merge reads it, and it is written each time
                sent = await client.upload_image(await _bytes(record, data), f"cp_{record.pk}.png", overwrite=True)
            else:
                name = _content_name(record, files.extension(kind))
                sent = await _send_once(client, record, data, name, kind, reused=reused)
            if field["type"] == "image":
                image_uploads[field_id] = sent
            uploaded[field_id] = sent.ref
    for field_id, field in fields.items():
        if field.get("type") != "mask" or field_id not in records:
            continue
        mask_record, mask_data = records[field_id]
        mask_data = await _bytes(mask_record, mask_data)
        image_id = field.get("for_image")
        image_record = records.get(image_id, (None, None))[0]
        size = (image_record.width, image_record.height) if image_record else (mask_record.width, mask_record.height)
        alpha_mode = field.get("mode") == "alpha" and image_id in image_uploads
        # Pillow and numpy over up to 4096² pixels: in a thread, so that the other jobs this
        # event loop follows are not held up.
        encoded = await asyncio.to_thread(prepare_mask, mask_data, field, size=size, alpha_mode=alpha_mode)
        stem = f"cp_{mask_record.pk}_{image_record.pk if image_record else 'x'}"
        if alpha_mode:
            merged = await client.upload_mask(
                encoded, f"{stem}_alpha.png", original=image_uploads[image_id], overwrite=True
            )
            uploaded[field_id] = merged.ref
        else:
            sent = await client.upload_image(encoded, f"{stem}_mask.png", overwrite=True)
            uploaded[field_id] = sent.ref
    return uploaded


def _content_name(record: JobFile, extension: str) -> str:
    return f"cp_{record.sha256[:40]}{extension}" if record.sha256 else f"cp_{record.pk}{extension}"


class InputsOnNode:
    """The content-named input files one client has put on its node (the most recent
    INPUTS_REMEMBERED): the node holds them unless it lost its input folder. One upload of a
    name at a time, so that a file is never rewritten while a prompt may be reading it."""

    def __init__(self) -> None:
        self.names: OrderedDict[str, None] = OrderedDict()
        self.sending: dict[str, asyncio.Lock] = {}

    def add(self, name: str) -> None:
        self.names[name] = None
        self.names.move_to_end(name)
        while len(self.names) > INPUTS_REMEMBERED:
            self.names.popitem(last=False)


_inputs_on: WeakKeyDictionary[ComfyClient, InputsOnNode] = WeakKeyDictionary()


def inputs_on(client: ComfyClient) -> InputsOnNode:
    if client not in _inputs_on:
        _inputs_on[client] = InputsOnNode()
    return _inputs_on[client]


async def _bytes(record: JobFile, data: bytes | None) -> bytes:
    return data if data is not None else await asyncio.to_thread(files.read_bytes, record)


async def _send_once(
    client: ComfyClient, record: JobFile, data: bytes | None, name: str, content_type: str, *, reused: list[str] | None
) -> Uploaded:
    known = inputs_on(client)
    lock = known.sending.setdefault(name, asyncio.Lock())
    try:
        async with lock:
            if name in known.names:
                known.names.move_to_end(name)
                if reused is not None:
                    reused.append(name)
                return Uploaded(name=name, subfolder="", type="input")
            sent = await client.upload_image(
                await _bytes(record, data), name, overwrite=True, content_type=content_type
            )
            if sent.name == name and not sent.subfolder:
                known.add(name)
            return sent
    finally:
        if not lock.locked():
            known.sending.pop(name, None)


def lost_inputs(client: ComfyClient, reused: list[str], node_errors: dict) -> list[str]:
    """The reused inputs a node refused a prompt for (it restarted without its input folder?):
    forgotten, so that the next upload_inputs sends them again."""
    text = str(node_errors)
    lost = [name for name in reused if name in text]
    for name in lost:
        inputs_on(client).names.pop(name, None)
    return lost


def prepare_mask(data: bytes, field: dict, *, size: tuple[int, int], alpha_mode: bool) -> bytes:
    """A mask normalized against its image (size, binarization, invert, grow) and encoded as
    comfyui-protocol.md §10 says: an RGB PNG in file mode, RGBA with alpha = 255 − mask merged
    through /upload/mask in alpha mode. CPU-bound: call it off the event loop."""
    mask = imaging.normalize_mask(
        data,
        size=size,
        invert=bool(field.get("invert")),
        grow=int(field.get("grow") or 0),
        soft_edges=bool(field.get("soft_edges")),
        resample=field.get("filter") or "nearest",
    )
    return imaging.encode_mask_alpha_mode(mask) if alpha_mode else imaging.encode_mask_file_mode(mask)


def wanted_outputs(spec: dict, entry: dict) -> list[dict]:
    """The files of a history entry (pictures, video, sound) that the spec names as outputs
    (all saved ones if none)."""
    images = output_images(entry)
    nodes = {str(o["node"]) for o in spec.get("outputs", []) if o.get("node") is not None}
    if nodes:
        return [image for image in images if image["node"] in nodes]
    return [image for image in images if image.get("type", "output") == "output"]


def missing_outputs(spec: dict, entry: dict) -> list[str]:
    """The spec's required output nodes that produced no file in a finished prompt's history entry.

    ComfyUI runs a prompt whose other outputs failed validation and calls it a success; only
    this check tells that the job did not give what its workflow promises."""
    produced = {image["node"] for image in output_images(entry)}
    return [
        str(o["node"])
        for o in spec.get("outputs", [])
        if o.get("node") is not None and not o.get("optional") and str(o["node"]) not in produced
    ]


def missing_outputs_error(graph: dict, node_ids: list[str]) -> str:
    """The job's error for missing outputs, naming each node with its title and class."""
    names = []
    for node_id in node_ids:
        node = graph.get(node_id) if isinstance(graph.get(node_id), dict) else {}
        title = (node.get("_meta") or {}).get("title")
        named = f'node {node_id} "{title}"' if title else f"node {node_id}"
        names.append(f"{named} ({node.get('class_type') or '?'})")
    return (
        f"Incomplete result: output {', '.join(names)} produced no image. "
        "The images that were made are kept as partial results."
    )


async def download_output(client: ComfyClient, image: dict) -> tuple[bytes, str]:
    """One output file of a history entry: its bytes and where it came from on the node."""
    kind, subfolder = image.get("type", "output"), image.get("subfolder", "")
    data = await client.view(image["filename"], subfolder=subfolder, type=kind)
    return data, f"{kind}/{subfolder}/{image['filename']}"
