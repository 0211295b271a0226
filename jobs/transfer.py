"""What a job sends to its node and brings back: input files (images, masks, video, sound) up,
output files down.

Async functions that take the node's client; no database (the follower reads the inputs and
stores the results through `jobs.steps`).
"""

from __future__ import annotations

import asyncio

from jobs import files, imaging
from jobs.models import Job, JobFile
from nodes.comfy.client import ComfyClient
from nodes.comfy.follow import output_images


async def upload_inputs(client: ComfyClient, job: Job, records: dict[str, tuple[JobFile, bytes]]) -> dict[str, str]:
    """Send the job's images and masks to the node; return {field id: name to put in the graph}.

    Images go first: a mask in alpha mode is merged into its image's upload.
    """
    fields = {f["id"]: f for f in job.workflow.spec.get("inputs", [])}
    uploaded: dict[str, str] = {}
    image_uploads = {}
    for field_id, field in fields.items():
        if field.get("type") == "image" and field_id in records:
            record, data = records[field_id]
            image_uploads[field_id] = await client.upload_image(data, f"cp_{record.pk}.png", overwrite=True)
            uploaded[field_id] = image_uploads[field_id].ref
        elif field.get("type") in ("video", "audio") and field_id in records:
            record, data = records[field_id]
            name = f"cp_{record.pk}{files.extension(record.content_type)}"
            sent = await client.upload_image(data, name, overwrite=True, content_type=record.content_type)
            uploaded[field_id] = sent.ref
    for field_id, field in fields.items():
        if field.get("type") != "mask" or field_id not in records:
            continue
        mask_record, mask_data = records[field_id]
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
