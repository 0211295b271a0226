"""Starting a new job from what an earlier one had or made, through the workflow form: a job's
inputs as the form's values ("Run again with changes"), one of its pictures in another
workflow's image field ("Use as input"), and the files such a form carries made the new job's own."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _

from core.errors import InvalidInput, NotFound
from jobs import files, storage
from jobs.models import Job, JobFile
from workflows.spec import FILE_FIELD_TYPES, first_image_field

UPLOAD_KIND = {
    "image": JobFile.Kind.IMAGE,
    "mask": JobFile.Kind.MASK,
    "video": JobFile.Kind.VIDEO,
    "audio": JobFile.Kind.AUDIO,
}


def form_values_of(job: Job, fields: list[dict], user) -> dict:
    """The form's values (field id → value) for running `job` again with changes: its inputs,
    the defaults for fields its version did not have. Files only when `user` owns them (an
    admin looking at someone's job gets the settings, not that person's pictures)."""
    values = {f["id"]: f.get("default") for f in fields}
    for field in fields:
        if field["id"] not in job.inputs:
            continue
        if field.get("type") in FILE_FIELD_TYPES and job.user_id != user.pk:
            continue
        values[field["id"]] = job.inputs[field["id"]]
    return values


def form_values_with_picture(user, file_id, spec: dict, fields: list[dict]) -> dict:
    """The form's default values with the user's picture `file_id` in the first image field;
    NotFound when the picture is not the user's (or not a picture), or the workflow takes none."""
    field_id = first_image_field(spec)
    record = _own_file(user, file_id)
    if field_id is None or record is None or record.media != JobFile.Media.IMAGE:
        raise NotFound("File not found.")
    values = {f["id"]: f.get("default") for f in fields}
    values[field_id] = str(record.pk)
    return values


def upload_for_new_job(user, file_id: str, field_type: str) -> str:
    """The upload id a new job takes for a file the form carries. The user's own unused upload
    as it is; a file another job holds (its input, or a result) copied, so that each job owns
    its inputs and deleting one never takes a file another still needs.

    InvalidInput when the file is not the user's (a form must not reach other people's files);
    storage.QuotaExceeded when the copy does not fit."""
    record = _own_file(user, file_id)
    if record is None:
        message = _("This file is not among yours (or was deleted); choose the file again.")
        raise InvalidInput(message, errors={"file": message})
    held = record.job_id is not None or record.kind == JobFile.Kind.RESULT
    wanted_media = "image" if field_type == "mask" else field_type
    if not held or (record.kind == JobFile.Kind.RESULT and record.media != wanted_media):
        return str(record.pk)  # as it is: submitting checks its kind and limits (jobs.services)
    storage.check_room_for_upload(user, record.size)
    kind = UPLOAD_KIND[field_type] if record.kind == JobFile.Kind.RESULT else record.kind
    return str(files.store_copy(record, owner=user, kind=kind).pk)


def _own_file(user, file_id) -> JobFile | None:
    try:
        pk = uuid.UUID(str(file_id))
    except ValueError:
        return None
    return JobFile.objects.filter(pk=pk, owner=user).first()
