"""Workflow Spec v1.2 (v1.0 and v1.1 accepted): the pydantic models that describe a workflow's form and bindings.

An admin uploads an API-format ComfyUI graph together with a spec. The spec lists the fields a
user fills in (``inputs``), which node inputs each field sets (``bind``) and which nodes produce
the results (``outputs``). These models are the single definition of the format: the JSON Schema
published under ``docs/workflow-spec.schema.json`` is generated from them (``spec_json_schema``).

Pure module: no Django. Rules that concern one field live on that field's model; rules that
relate fields to each other (duplicate ids, ``for_image``) live in ``spec_consistency_errors``
so that the upload validator can report each with its own path.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

SPEC_VERSION = "1.2"
# 1.1 added video and audio inputs and output types, and model files from the farm on choice
# fields (choices_from, match); 1.2 added texts by language and choice labels. Older specs stay
# valid as they were.
SPEC_VERSIONS = ("1.0", "1.1", "1.2")
SEED_MAX = 2**64 - 1  # KSampler.seed / KSamplerAdvanced.noise_seed accept 0 … 2**64-1

# Strict so that JSON ``true`` is never taken for 1 and "12" is never taken for a number in a
# spec (user-typed values are coerced elsewhere, in prompt.validate_inputs).
StrictInt = Annotated[int, Strict()]
StrictFloat = Annotated[float, Strict()]  # still accepts JSON integers such as 7
StrictBool = Annotated[bool, Strict()]

FIELD_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
VERSION_PATTERN = r"^\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$"

# Mask normalization is done by comfyportal before upload; these are the accepted resamplers.
MaskFilter = Literal["nearest", "bilinear"]


# The languages a text may be given in (the site's LANGUAGES; a test keeps them equal). "en" is
# the fallback when a text lacks the reader's language.
TEXT_LANGUAGES = ("en", "ru")
FALLBACK_LANGUAGE = "en"


def localized_text(max_length: int, min_length: int = 0) -> Any:
    """A text shown to users: one string, or (spec 1.2) ``{"en": …, "ru": …}`` with at least one
    of TEXT_LANGUAGES. Length limits apply to each language's text."""

    def check_length(text: str, where: str) -> None:
        if len(text) < min_length:
            raise ValueError(f"{where}must not be empty" if min_length == 1 else f"{where}is too short")
        if len(text) > max_length:
            raise ValueError(f"{where}must be at most {max_length} characters, got {len(text)}")

    def check(value: Any) -> Any:
        if isinstance(value, str):
            check_length(value, "")
            return value
        if not isinstance(value, dict):
            raise ValueError('must be a string or texts by language, like {"en": "Seed", "ru": "Сид"}')
        if not value:
            raise ValueError(f"texts by language must give at least one of: {', '.join(TEXT_LANGUAGES)}")
        for language, text in value.items():
            if language not in TEXT_LANGUAGES:
                raise ValueError(f"unknown language {language!r}; use one of: {', '.join(TEXT_LANGUAGES)}")
            if not isinstance(text, str):
                raise ValueError(f"the {language!r} text must be a string")
            check_length(text, f"the {language!r} text ")
        return value

    text_schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if min_length:
        text_schema["minLength"] = min_length
    schema = {
        "anyOf": [
            text_schema,
            {
                "type": "object",
                "description": "Spec 1.2: the text by language; 'en' is shown when the reader's language is missing.",
                "propertyNames": {"enum": list(TEXT_LANGUAGES)},
                "additionalProperties": text_schema,
                "minProperties": 1,
            },
        ]
    }
    return Annotated[str | dict[str, str], BeforeValidator(check), WithJsonSchema(schema)]


LocalizedLabel = localized_text(200, min_length=1)
LocalizedHelp = localized_text(2000)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Bind(_Model):
    """One node input that receives a field's value."""

    node: str = Field(min_length=1, description="Node id in the API-format graph (a string).")
    input: str = Field(min_length=1, description="Input name on that node, e.g. 'seed'.")


class _FieldBase(_Model):
    id: str = Field(
        pattern=FIELD_ID_PATTERN,
        description="Identifier of the field: letters, digits, underscore; not starting with a digit.",
    )
    label: LocalizedLabel = Field(description="Label shown on the form.")
    help: LocalizedHelp = Field(default="", description="One or two sentences of help.")
    required: bool = Field(default=False, description="The user must give a value.")
    bind: list[Bind] = Field(default_factory=list, description="Node inputs that receive the value (at least one).")

    @model_validator(mode="after")
    def _needs_bind(self) -> _FieldBase:
        if not self.bind and not _is_alpha_mask(self):
            raise ValueError("bind must name at least one node input")
        return self


def _is_alpha_mask(field: Any) -> bool:
    return getattr(field, "type", None) == "mask" and getattr(field, "mode", None) == "alpha"


def _check_range(lo: float | None, hi: float | None, default: float | None, what: str = "") -> None:
    """Raise ValueError when min > max or the default lies outside [min, max]."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min {lo} is greater than max {hi}")
    if default is not None:
        if lo is not None and default < lo:
            raise ValueError(f"default {default} is below min {lo}")
        if hi is not None and default > hi:
            raise ValueError(f"default {default} is above max {hi}")


class TextField(_FieldBase):
    """Free text: a prompt, a filename prefix, anything bound to a STRING input."""

    type: Literal["text"]
    multiline: bool = Field(default=False, description="Render a textarea instead of one line.")
    min_length: StrictInt = Field(default=0, ge=0, description="Fewest characters allowed.")
    max_length: StrictInt | None = Field(default=None, ge=1, description="Most characters allowed.")
    default: str | None = None
    placeholder: localized_text(500) = Field(default="", description="Hint shown in the empty box.")

    @model_validator(mode="after")
    def _rules(self) -> TextField:
        if self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is greater than max_length {self.max_length}")
        if self.default is not None:
            if self.max_length is not None and len(self.default) > self.max_length:
                raise ValueError(f"default is longer than max_length {self.max_length}")
            if self.default and len(self.default) < self.min_length:
                raise ValueError(f"default is shorter than min_length {self.min_length}")
        return self


class IntField(_FieldBase):
    """A whole number (steps, width, batch size…)."""

    type: Literal["int"]
    min: StrictInt | None = None
    max: StrictInt | None = None
    step: StrictInt | None = Field(default=None, description="Increment of the widget (> 0).")
    default: StrictInt | None = None
    widget: Literal["number", "slider"] = "number"

    @model_validator(mode="after")
    def _rules(self) -> IntField:
        _check_number(self)
        return self


class FloatField(_FieldBase):
    """A decimal number (cfg, denoise, strength…)."""

    type: Literal["float"]
    min: StrictFloat | None = None
    max: StrictFloat | None = None
    step: StrictFloat | None = Field(default=None, description="Increment of the widget (> 0).")
    default: StrictFloat | None = None
    widget: Literal["number", "slider"] = "number"

    @model_validator(mode="after")
    def _rules(self) -> FloatField:
        _check_number(self)
        return self


def _check_number(field: IntField | FloatField) -> None:
    if field.step is not None and field.step <= 0:
        raise ValueError(f"step must be greater than 0, got {field.step}")
    if field.widget == "slider" and (field.min is None or field.max is None):
        raise ValueError("a slider needs both min and max")
    _check_range(field.min, field.max, field.default)


class BoolField(_FieldBase):
    """An on/off switch bound to a BOOLEAN input."""

    type: Literal["bool"]
    default: StrictBool | None = None


MODEL_FOLDER_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"


class ChoiceField(_FieldBase):
    """One value out of a fixed list (sampler, scheduler…), or (spec 1.1) out of the model files
    the farm holds in a folder (``choices_from``), optionally filtered by a glob (``match``)."""

    type: Literal["choice"]
    choices: list[str] = Field(
        default_factory=list, description="Allowed values, in display order (not with choices_from)."
    )
    choices_from: str | None = Field(
        default=None,
        pattern=MODEL_FOLDER_PATTERN,
        description="Spec 1.1: offer the files of this model folder ('checkpoints', 'loras'…) found on "
        "the active nodes able to run the workflow, instead of a fixed list.",
    )
    match: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="With choices_from: only files whose name matches this glob, e.g. 'sdxl/*'.",
    )
    default: str | None = Field(
        default=None, description="With choices_from: preferred when present on the farm, else the first file."
    )
    choice_labels: dict[str, LocalizedLabel] = Field(
        default_factory=dict,
        description="Spec 1.2: what the form shows for a choice, by its value, e.g. "
        '{"center": {"en": "Centre", "ru": "По центру"}}; a choice without one shows its value.',
    )

    @model_validator(mode="after")
    def _rules(self) -> ChoiceField:
        if self.choices_from is not None:
            if self.choices:
                raise ValueError("give either choices or choices_from, not both")
            if self.default is not None and not fnmatch.fnmatchcase(self.default, self.match or "*"):
                raise ValueError(f"default {self.default!r} does not match {self.match!r}")
            if self.choice_labels:
                raise ValueError("choice_labels needs a fixed list of choices, not choices_from")
            return self
        if self.match is not None:
            raise ValueError("match needs choices_from")
        if not self.choices:
            raise ValueError("choices must list at least one value (or use choices_from)")
        seen: set[str] = set()
        for choice in self.choices:
            if choice in seen:
                raise ValueError(f"choice {choice!r} is listed twice")
            seen.add(choice)
        if self.default is not None and self.default not in seen:
            raise ValueError(f"default {self.default!r} is not one of the choices")
        for value in self.choice_labels:
            if value not in seen:
                raise ValueError(f"choice_labels names {value!r}, which is not one of the choices")
        return self


class SeedField(_FieldBase):
    """A sampler seed; -1 means "pick one at random" and the real seed is stored on the job."""

    type: Literal["seed"]
    default: StrictInt = Field(default=-1, description="-1 = random.")
    min: StrictInt = Field(default=0, ge=0)
    max: StrictInt = Field(default=SEED_MAX, le=SEED_MAX)

    @model_validator(mode="after")
    def _rules(self) -> SeedField:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.default != -1:
            _check_range(self.min, self.max, self.default)
        return self


class ImageField(_FieldBase):
    """An uploaded picture, bound to a LoadImage node's ``image`` input."""

    type: Literal["image"]
    required: bool = True
    max_pixels: StrictInt | None = Field(default=None, ge=1, description="Largest width × height.")
    max_side: StrictInt | None = Field(default=None, ge=1, description="Largest width or height.")


class MaskField(_FieldBase):
    """A grey mask painted over (or uploaded for) an image field; white = the area to change.

    ``mode: "file"`` binds to a LoadImageMask ``image`` input (sent as an RGB PNG, channel red).
    ``mode: "alpha"`` has no bind: the mask is merged into the image's alpha via /upload/mask and
    the image's LoadImage node gets the merged file (its MASK output then carries the mask).
    """

    type: Literal["mask"]
    required: bool = True
    for_image: str = Field(pattern=FIELD_ID_PATTERN, description="Id of the image field it masks.")
    mode: Literal["file", "alpha"] = "file"
    invert: bool = Field(default=False, description="Swap painted and unpainted areas.")
    grow: StrictInt = Field(default=0, ge=0, le=1024, description="Dilate the mask by N pixels.")
    soft_edges: bool = Field(default=False, description="Keep 8-bit grey instead of binarizing.")
    filter: MaskFilter = Field(default="bilinear", description="Resampler used to fit the image size.")

    @model_validator(mode="after")
    def _rules(self) -> MaskField:
        if self.mode == "alpha" and self.bind:
            raise ValueError(
                "an alpha-mode mask has no bind of its own: it reaches ComfyUI through "
                "the image's LoadImage node (its MASK output)"
            )
        return self


class _MediaLimits(_Model):
    max_bytes: StrictInt | None = Field(default=None, ge=1, description="Largest file size in bytes.")
    max_seconds: StrictFloat | None = Field(default=None, gt=0, description="Longest duration in seconds.")


class VideoField(_FieldBase, _MediaLimits):
    """An uploaded video clip (MP4, WebM, MOV, MKV, animated GIF/PNG), bound to ``LoadVideo.file``.

    Limits are checked against what the file really holds (read with PyAV), not its name.
    """

    type: Literal["video"]
    required: bool = True
    max_pixels: StrictInt | None = Field(default=None, ge=1, description="Largest frame width × height.")
    max_frames: StrictInt | None = Field(default=None, ge=1, description="Most frames.")


class AudioField(_FieldBase, _MediaLimits):
    """An uploaded sound (WAV, FLAC, MP3, Ogg/Opus, M4A), bound to ``LoadAudio.audio``."""

    type: Literal["audio"]
    required: bool = True


InputField = Annotated[
    TextField
    | IntField
    | FloatField
    | BoolField
    | ChoiceField
    | SeedField
    | ImageField
    | MaskField
    | VideoField
    | AudioField,
    Field(discriminator="type"),
]
FIELD_TYPES = ("text", "int", "float", "bool", "choice", "seed", "image", "mask", "video", "audio")
FILE_FIELD_TYPES = ("image", "mask", "video", "audio")
MEDIA_FIELD_TYPES = ("video", "audio")  # new in spec 1.1
OUTPUT_TYPES = ("image", "video", "audio")


def file_fields(spec: dict[str, Any]) -> dict[str, str]:
    """The fields of a stored spec that take an uploaded file: {field id: "image" | "mask" | "video" | "audio"}."""
    return {f["id"]: f["type"] for f in spec.get("inputs", []) if f.get("type") in FILE_FIELD_TYPES}


def first_image_field(spec: dict[str, Any]) -> str | None:
    """The id of the first field that takes a picture (not a mask): where "use as input" puts one."""
    return next((f["id"] for f in spec.get("inputs", []) if f.get("type") == "image"), None)


class Output(_Model):
    """A node whose files are collected as the job's results, and what kind of file it gives."""

    node: str = Field(min_length=1)
    type: Literal["image", "video", "audio"] = Field(
        default="image",
        description="What the node gives: still pictures (SaveImage), video or animations (SaveVideo, "
        "SaveWEBM, SaveAnimatedWEBP, SaveAnimatedPNG) or sound (SaveAudio…). Video and audio need spec 1.1.",
    )
    optional: StrictBool = Field(
        default=False,
        description="The job may end DONE without a file from this node; "
        "by default a job whose outputs did not all produce one ends in ERROR.",
    )


class WorkflowSpec(_Model):
    """The whole spec. Validate with ``WorkflowSpec.model_validate(data)``."""

    spec_version: Literal["1.0", "1.1", "1.2"]
    slug: str = Field(pattern=SLUG_PATTERN, max_length=64)
    name: LocalizedLabel = Field(description="Display name.")
    version: str = Field(pattern=VERSION_PATTERN, description="Like 1.0.0 (semver).")
    category: localized_text(64, min_length=1) = Field(
        default="general",
        description="Groups workflows in the catalogue. A known key (txt2img, img2img, inpaint, upscale, "
        "controlnet, variation, video, audio, tools, general) is shown translated.",
    )
    description: localized_text(5000) = Field(default="", description="One or two sentences on the card.")
    example_image: str | None = Field(default=None, max_length=2000, description="Thumbnail URL/path.")
    inputs: list[InputField] = Field(default_factory=list)
    outputs: list[Output] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> WorkflowSpec:
        # The upload validator asks to defer these so it can report each one at its own path.
        if info.context and info.context.get("defer_consistency"):
            return self
        problems = spec_consistency_errors(self)
        if problems:
            raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
        return self

    def field(self, field_id: str) -> InputField | None:
        """Return the input field with this id, or None."""
        return next((f for f in self.inputs if f.id == field_id), None)

    @property
    def requires_mask(self) -> bool:
        """True when the form carries a mask (the page then shows the mask canvas)."""
        return any(f.type == "mask" for f in self.inputs)


def spec_consistency_errors(spec: WorkflowSpec) -> list[tuple[str, str]]:
    """Return ``[(path, message)]`` for rules that relate fields to each other.

    Duplicate field ids, masks whose ``for_image`` is missing or not an image, two masks on one
    image, duplicate outputs. An empty list means the spec is consistent.
    """
    problems: list[tuple[str, str]] = []
    by_id: dict[str, Any] = {}
    for i, field in enumerate(spec.inputs):
        if field.id in by_id:
            problems.append((f"inputs[{i}].id", f"duplicate field id {field.id!r}"))
        else:
            by_id[field.id] = field
    masked: dict[str, str] = {}
    for i, field in enumerate(spec.inputs):
        if field.type != "mask":
            continue
        target = by_id.get(field.for_image)
        if target is None:
            problems.append((f"inputs[{i}].for_image", f"no field has id {field.for_image!r}"))
        elif target.type != "image":
            problems.append(
                (f"inputs[{i}].for_image", f"field {field.for_image!r} is a {target.type} field, not an image")
            )
        elif field.for_image in masked:
            problems.append(
                (f"inputs[{i}].for_image", f"image {field.for_image!r} already has mask {masked[field.for_image]!r}")
            )
        else:
            masked[field.for_image] = field.id
            if field.required and not target.required:
                problems.append(
                    (f"inputs[{i}].required", f"a required mask needs a required image; {target.id!r} is optional")
                )
    if spec.spec_version == "1.0":  # video and audio came with 1.1: an old reader would not know them
        for i, field in enumerate(spec.inputs):
            if field.type in MEDIA_FIELD_TYPES:
                problems.append((f"inputs[{i}].type", f'{field.type} fields need spec_version "1.1"'))
        for i, out in enumerate(spec.outputs):
            if out.type != "image":
                problems.append((f"outputs[{i}].type", f'{out.type} outputs need spec_version "1.1"'))
    if spec.spec_version in ("1.0", "1.1"):  # texts by language came with 1.2
        for path, value in spec_texts(spec):
            if isinstance(value, dict):
                problems.append((path, 'texts by language need spec_version "1.2"'))
        for i, field in enumerate(spec.inputs):
            if getattr(field, "choice_labels", None):
                problems.append((f"inputs[{i}].choice_labels", 'choice_labels need spec_version "1.2"'))
    for i, field in enumerate(spec.inputs):
        if getattr(field, "choices_from", None) is not None and spec.spec_version == "1.0":
            problems.append((f"inputs[{i}].choices_from", f"field {field.id!r}: choices_from needs spec_version 1.1"))
    seen_outputs: set[str] = set()
    for i, out in enumerate(spec.outputs):
        if out.node in seen_outputs:
            problems.append((f"outputs[{i}].node", f"node {out.node!r} is listed twice"))
        seen_outputs.add(out.node)
    return problems


TEXT_KEYS = ("label", "help", "placeholder")


def spec_texts(spec: WorkflowSpec) -> list[tuple[str, str | dict[str, str]]]:
    """Every text of a spec shown to users, with its path: name, category, description, each
    field's label, help and placeholder, and each choice label."""
    texts: list[tuple[str, str | dict[str, str]]] = [
        ("name", spec.name),
        ("category", spec.category),
        ("description", spec.description),
    ]
    for i, field in enumerate(spec.inputs):
        for key in TEXT_KEYS:
            if hasattr(field, key):
                texts.append((f"inputs[{i}].{key}", getattr(field, key)))
        for value, label in getattr(field, "choice_labels", {}).items():
            texts.append((f"inputs[{i}].choice_labels.{value}", label))
    return texts


def model_binds(spec: WorkflowSpec) -> dict[tuple[str, str], str]:
    """{(node id, input): model folder} that the spec's choices_from fields set."""
    return {
        (bind.node, bind.input): field.choices_from
        for field in spec.inputs
        if getattr(field, "choices_from", None)
        for bind in field.bind
    }


def parse_spec(spec: WorkflowSpec | dict[str, Any]) -> WorkflowSpec:
    """Return ``spec`` as a model; a dict is validated (raises pydantic.ValidationError)."""
    if isinstance(spec, WorkflowSpec):
        return spec
    return WorkflowSpec.model_validate(spec)


def workflow_spec(workflow: Any) -> WorkflowSpec:
    """The spec of ``workflow`` (anything with ``.spec``) as a model: a Workflow's own, parsed
    once (Workflow.parsed_spec); anything else's, parsed now."""
    parsed = getattr(workflow, "parsed_spec", None)
    return parsed if isinstance(parsed, WorkflowSpec) else parse_spec(workflow.spec)


def spec_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of Workflow Spec v1.2, generated from the models."""
    schema = WorkflowSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/api/workflow-spec/v1.json"
    schema["title"] = "comfyportal Workflow Spec v1.2"
    return schema


if __name__ == "__main__":  # python -m workflows.spec > docs/workflow-spec.schema.json
    import json

    print(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))
