"""A job and its files in one request (`POST /api/jobs/with-files`).

Each file part is checked and stored as `POST /api/uploads` stores a file for a workflow's
field (jobs.files.check_sent_size, then store_upload with the field's limits, decoded under the
same per-user bound), then the job is submitted as `POST /api/jobs` submits it
(jobs.services.submit_job). A submit refused after its files were stored deletes them: an
upload nobody can name would only fill its owner's storage until the retention clean-up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from django.core.files.uploadedfile import UploadedFile
from django.utils.datastructures import MultiValueDict

from core.errors import DomainError, InvalidInput, field_errors_detail
from core.nul import json_holds_nul
from jobs import files, idempotency, services
from jobs.models import Job, JobFile
from workflows.services import get_active_workflow
from workflows.spec import file_fields

FORM_FIELDS = frozenset({"workflow", "inputs", "webhook_url"})  # the parts that are not files
OPERATION = "POST /api/jobs/with-files"
# The request body as the OpenAPI document gives it: the file parts' names are the workflow's field ids.
OPENAPI_BODY = {
    "title": "JobWithFilesIn",
    "type": "object",
    "properties": {
        "workflow": {"type": "string", "description": "The workflow's slug."},
        "inputs": {
            "type": "string",
            "description": 'The fields other than files, a JSON object as text: `{"steps": 20}`.',
            "contentMediaType": "application/json",
        },
        "webhook_url": {"type": "string", "description": "Where to send this job's webhooks."},
    },
    "required": ["workflow"],
    "additionalProperties": {
        "type": "string",
        "format": "binary",
        "description": "A file for the file field (image, mask, video, audio) of this name.",
    },
}


def submit_with_files(
    *,
    user,
    workflow_slug: str,
    inputs_text: str,
    parts: MultiValueDict,
    text_parts: Iterable[str] = (),
    webhook_url: str = "",
    idempotency_key: str | None = None,
) -> Job:
    """Store each of `parts` (file parts named by file field ids) as an upload for its field,
    then submit the job with `inputs_text` (a JSON object of the other fields) and the uploads.

    Raises what submit_job raises, NotFound (404) for the workflow, and InvalidInput (400),
    TooLarge (413) or TooManyRequests (429, the decode bound) naming the field. `text_parts` are
    the names of the form's text parts, so that a field sent as text is refused, not ignored.
    With `idempotency_key`, the fingerprint holds each file's SHA-256: a retry of the same
    request gets the first job (`job.replayed`) without its files being decoded again."""
    workflow = get_active_workflow(workflow_slug)
    fields = {f["id"]: f for f in workflow.spec.get("inputs", []) if f.get("id") in file_fields(workflow.spec)}
    inputs = _parsed_inputs(inputs_text)
    sent = _file_parts(workflow_slug, fields, parts, text_parts, inputs)
    webhook_url = services.checked_webhook_url(webhook_url)
    idem = None
    if idempotency_key is not None:
        files_sent = {field_id: _sha256(part) for field_id, part in sent.items()}
        body = {"workflow": workflow_slug, "inputs": inputs, "webhook_url": webhook_url, "files": files_sent}
        idem = idempotency.for_key(idempotency_key, operation=OPERATION, body=body)
        earlier = idempotency.earlier_job(user.pk, idem)  # 422 here for another body
        if earlier is not None:
            earlier.replayed = True
            return earlier
    stored: list[JobFile] = []
    try:
        for field_id, part in sent.items():
            stored.append(_store_part(user, part, fields[field_id]))
            inputs[field_id] = str(stored[-1].pk)
        job = services.submit_job(
            user=user, workflow=workflow, inputs=inputs, idempotency=idem, webhook_url=webhook_url
        )
    except Exception:
        files.delete_files(stored)
        raise
    if getattr(job, "replayed", False):  # a concurrent retry with the same key made the job first
        files.delete_files(stored)
    return job


def _parsed_inputs(text: str) -> dict:
    if not text.strip():
        return {}
    try:
        inputs = json.loads(text)
    except (ValueError, RecursionError):  # (nested too deep to read)
        inputs = None
    if not isinstance(inputs, dict):
        raise InvalidInput(
            "inputs: must be a JSON object of field id → value.", errors={"inputs": "must be a JSON object"}
        )
    if json_holds_nul(text):  # an escape gets past the middleware's check of form values
        raise InvalidInput("inputs: NUL characters (\\u0000) are not allowed.", errors={"inputs": "NUL character"})
    return inputs


def _file_parts(
    slug: str, fields: Mapping[str, dict], parts: MultiValueDict, text_parts: Iterable[str], inputs: dict
) -> dict[str, UploadedFile]:
    """{field id: its file part}, each within the site's byte limit for its field's type; 400
    naming a part that is no file field of the workflow, or a file field given twice."""
    errors = {}
    for name in text_parts:
        if name in FORM_FIELDS:
            continue
        errors[name] = (
            "send the file itself as this part, or its upload id in `inputs`"
            if name in fields
            else f"workflow '{slug}' has no file field '{name}'; put other fields in `inputs`"
        )
    sent = {}
    for name, given in parts.lists():
        if name not in fields:
            errors[name] = f"workflow '{slug}' has no file field '{name}'"
        elif len(given) > 1:
            errors[name] = "send one file for this field"
        elif name in inputs:
            errors[name] = "given both as a file part and in `inputs`; send one"
        else:
            sent[name] = given[0]
    if errors:
        raise InvalidInput(field_errors_detail(errors), errors=errors)
    for field_id, part in sent.items():
        files.check_sent_size(part.size, fields[field_id]["type"], name=field_id)
    return sent


def _store_part(user, part: UploadedFile, field: dict) -> JobFile:
    """store_upload for one field, its errors naming the field rather than the upload's `file`."""
    try:
        return files.store_upload(
            owner=user, data=part.read(), kind=field["type"], filename=part.name or "", limits=field
        )
    except DomainError as exc:
        message = ((exc.errors or {}).get("file") or exc.detail).removeprefix("file: ")
        raise type(exc)(
            f"{field['id']}: {message}", errors={field["id"]: message}, headers=exc.headers, extra=exc.extra
        ) from exc


def _sha256(part: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in part.chunks():  # (chunks() starts from the beginning; read() after it too)
        digest.update(chunk)
    part.seek(0)
    return digest.hexdigest()
