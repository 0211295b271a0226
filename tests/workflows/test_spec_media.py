"""Spec 1.1: video and audio fields, output types, and their binding checks at upload."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from workflows.spec import WorkflowSpec, file_fields, spec_json_schema
from workflows.ui_schema import ui_schema
from workflows.validation import WorkflowInvalid, validate_upload

from .conftest import load_example


def spec_with(inputs=(), outputs=None, version="1.1"):
    return {
        "spec_version": version,
        "slug": "t",
        "name": "T",
        "version": "1.0.0",
        "inputs": list(inputs),
        "outputs": outputs or [{"node": "9", "type": "video"}],
    }


VIDEO = {"id": "clip", "label": "Clip", "type": "video", "bind": [{"node": "1", "input": "file"}]}
AUDIO = {"id": "voice", "label": "Voice", "type": "audio", "bind": [{"node": "1", "input": "audio"}]}


def test_video_and_audio_fields_with_limits():
    spec = WorkflowSpec.model_validate(
        spec_with(
            [
                {**VIDEO, "max_bytes": 10_000_000, "max_seconds": 12.5, "max_pixels": 921600, "max_frames": 300},
                {**AUDIO, "required": False, "max_seconds": 30.0},
            ]
        )
    )
    clip, voice = spec.inputs
    assert (clip.required, clip.max_seconds, clip.max_frames, clip.max_pixels) == (True, 12.5, 300, 921600)
    assert (voice.required, voice.max_seconds, voice.max_bytes) == (False, 30.0, None)
    assert file_fields(spec.model_dump()) == {"clip": "video", "voice": "audio"}
    fields = ui_schema(spec)["fields"]
    assert [f["widget"] for f in fields] == ["video", "audio"]
    assert fields[0]["max_seconds"] == 12.5 and fields[0]["max_frames"] == 300


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ({**VIDEO, "max_seconds": 0}, "greater than 0"),
        ({**VIDEO, "max_frames": 0}, "greater than or equal to 1"),
        ({**VIDEO, "max_bytes": -5}, "greater than or equal to 1"),
        ({**VIDEO, "max_seconds": "10"}, "valid number"),
        ({**AUDIO, "max_frames": 10}, "Extra inputs"),  # sound has no frames
        ({**AUDIO, "max_pixels": 10}, "Extra inputs"),
        ({**VIDEO, "bind": []}, "bind must name"),
    ],
)
def test_bad_media_fields_are_refused(field, words):
    with pytest.raises(ValidationError, match=words):
        WorkflowSpec.model_validate(spec_with([field]))


def test_output_types():
    for kind in ("image", "video", "audio"):
        assert WorkflowSpec.model_validate(spec_with(outputs=[{"node": "9", "type": kind}])).outputs[0].type == kind
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate(spec_with(outputs=[{"node": "9", "type": "text"}]))


def test_spec_1_0_keeps_working_and_cannot_use_media():
    old = spec_with(outputs=[{"node": "9"}], version="1.0")
    assert WorkflowSpec.model_validate(old).outputs[0].type == "image"
    with pytest.raises(ValidationError, match='video fields need spec_version "1.1"'):
        WorkflowSpec.model_validate(spec_with([VIDEO], outputs=[{"node": "9"}], version="1.0"))
    with pytest.raises(ValidationError, match='audio outputs need spec_version "1.1"'):
        WorkflowSpec.model_validate(spec_with(outputs=[{"node": "9", "type": "audio"}], version="1.0"))
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate(spec_with(version="2.0"))


def test_schema_describes_the_media_types():
    schema = spec_json_schema()
    assert schema["properties"]["spec_version"]["enum"] == ["1.0", "1.1", "1.2"]
    assert {"VideoField", "AudioField"} <= set(schema["$defs"])
    assert schema["$defs"]["Output"]["properties"]["type"]["enum"] == ["image", "video", "audio"]
    assert {"max_bytes", "max_seconds", "max_pixels", "max_frames"} <= set(schema["$defs"]["VideoField"]["properties"])


def _errors(graph, spec) -> list[str]:
    try:
        validate_upload(graph, spec)
    except WorkflowInvalid as exc:
        return [str(e) for e in exc.errors]
    return []


def _warnings(graph, spec) -> list[str]:
    return validate_upload(graph, spec).warnings


def _edited(slug, fn):
    graph, spec = load_example(slug)
    fn(graph, spec)
    return graph, spec


def _replace_field(field: dict):
    return lambda g, s: s["inputs"].__setitem__(0, {"label": "F", "help": "h", **field})


BINDING_CASES = [
    (
        "video field on LoadImage",
        "frames-to-video",
        _replace_field({"id": "image", "type": "video", "bind": [{"node": "1", "input": "image"}]}),
        "a video field must bind to a LoadVideo node's 'file' input, not LoadImage.image",
    ),
    (
        "audio field on LoadVideo",
        "video-convert",
        _replace_field({"id": "video", "type": "audio", "bind": [{"node": "1", "input": "file"}]}),
        "an audio field must bind to a LoadAudio node's 'audio' input, not LoadVideo.file",
    ),
    (
        "image field on LoadAudio",
        "audio-to-flac",
        lambda g, s: s["inputs"].__setitem__(
            0, {"id": "audio", "label": "A", "type": "image", "help": "h", "bind": [{"node": "1", "input": "audio"}]}
        ),
        "an image field must bind to a LoadImage node's 'image' input, not LoadAudio.audio",
    ),
    (
        "text field on LoadVideo.file",
        "video-convert",
        lambda g, s: s["inputs"].__setitem__(
            0, {"id": "video", "label": "T", "type": "text", "help": "h", "bind": [{"node": "1", "input": "file"}]}
        ),
        "LoadVideo.file takes an uploaded file; use a video field",
    ),
    (
        "audio output on SaveVideo",
        "frames-to-video",
        lambda g, s: s["outputs"][0].update(type="audio"),
        "node '4' (SaveVideo) makes video, not audio",
    ),
    (
        "video output on SaveAudio",
        "audio-to-flac",
        lambda g, s: s["outputs"][0].update(type="video"),
        "node '2' (SaveAudio) makes audio, not video",
    ),
    (
        "image output on SaveAudio",
        "audio-to-flac",
        lambda g, s: s["outputs"][0].pop("type"),
        'makes audio, not image; declare "type": "audio"',
    ),
    (
        "unknown SaveVideo format",
        "frames-to-video",
        lambda g, s: g["4"]["inputs"].update(format="bogus"),
        "'bogus' is not one of: 'auto', 'mp4', 'mkv', 'webm'",
    ),
]


@pytest.mark.parametrize(("case", "slug", "edit", "message"), BINDING_CASES, ids=[c[0] for c in BINDING_CASES])
def test_upload_checks_media_bindings(case, slug, edit, message):
    graph, spec = _edited(slug, edit)
    errors = _errors(graph, spec)
    assert any(message in e for e in errors), errors


def test_an_image_output_on_a_video_node_is_only_a_warning():
    graph, spec = _edited("frames-to-video", lambda g, s: s["outputs"][0].update(type="image"))
    assert any('declare "type": "video"' in w for w in _warnings(graph, spec))


def test_an_unknown_output_node_is_judged_by_what_it_takes():
    graph, spec = load_example("audio-to-flac")
    graph = copy.deepcopy(graph)
    graph["2"]["class_type"] = "SaveAudioOpus"
    graph["2"]["inputs"]["quality"] = "128k"
    assert _errors(graph, spec) == []
    spec["outputs"][0]["type"] = "video"
    assert any("(SaveAudioOpus) makes audio" in e for e in _errors(graph, spec))
