"""Contract test: every recorded real-server transcript replays identically against testcomfy."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import numpy as np
import pytest
from PIL import Image

from .replay import TRANSCRIPTS, Replayer, load, make_upload

TRANSCRIPT_FILES = sorted(p.name for p in TRANSCRIPTS.glob("*.jsonl"))
# Per scenario: server settings that stand in for the real server's slowness.
SETTINGS = {"interrupt.jsonl": {"job_time": 3.0}}


def test_transcripts_are_present() -> None:
    assert len(TRANSCRIPT_FILES) >= 8, f"no transcripts under {TRANSCRIPTS}"


async def _warm_up(server, session: aiohttp.ClientSession) -> None:
    """The recording server had older jobs in its history (the jobs list says has_more)."""
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "warmup"}},
    }
    async with session.post(server.url + "/prompt", json={"prompt": prompt}) as r:
        prompt_id = (await r.json())["prompt_id"]
    for _ in range(200):
        async with session.get(f"{server.url}/history/{prompt_id}") as r:
            if await r.json():
                return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("name", TRANSCRIPT_FILES)
async def test_replay_transcript(name: str, make_server, session: aiohttp.ClientSession) -> None:
    note, events = load(name)
    server = await make_server(default_models=False, **SETTINGS.get(name, {}))
    if any(e.get("dir") == "http" and e["path"].startswith("/api/jobs?") for e in events):
        await _warm_up(server, session)
    replayer = Replayer(server.url, events)
    await replayer.run(session)
    CHECKS.get(name, lambda r: None)(replayer)


def _view(replayer: Replayer, prefix: str) -> np.ndarray:
    body = next(b for p, b in replayer.bodies.items() if f"filename={prefix}" in p)
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def _upload(events, filename: str) -> np.ndarray:
    for event in events:
        for part in (event.get("request") or {}).get("multipart", []) if isinstance(event.get("request"), dict) else []:
            if part.get("filename") == filename:
                return np.asarray(Image.open(io.BytesIO(make_upload(filename, part["content"]))))
    raise KeyError(filename)


def _check_simple(replayer: Replayer) -> None:
    out = _view(replayer, "simple_00001_.png")
    assert out.shape == (32, 48, 3)
    assert tuple(out[0, 0]) == (0, 255, 255) and tuple(out[0, 47]) == (255, 0, 255)
    assert tuple(out[31, 0]) == (255, 255, 0) and tuple(out[31, 47]) == (191, 126, 62)
    assert len({tuple(p) for p in out[:16, :24].reshape(-1, 3)}) == 1


def _emulate(orig: np.ndarray, mask: np.ndarray) -> np.ndarray:
    f = orig.astype(np.float32) / np.float32(255.0)
    inv = np.float32(1.0) - f
    m = mask[..., None].astype(np.float32)
    out = m * inv + (np.float32(1.0) - m) * f
    return np.clip(out * np.float32(255.0), 0, 255).astype(np.uint8)


def _check_mask_alpha(replayer: Replayer) -> None:
    _, events = load("mask_alpha.jsonl")
    orig = _upload(events, "ma_src.png")
    alpha = _upload(events, "ma_mask.png")[..., 3]
    mask = np.float32(1.0) - alpha.astype(np.float32) / np.float32(255.0)
    assert np.array_equal(_view(replayer, "mask_alpha_00001_.png"), _emulate(orig, mask))
    merged = np.asarray(Image.open(io.BytesIO(replayer.bodies[next(p for p in replayer.bodies if "ma_mask.png" in p)])))
    assert np.array_equal(merged[..., :3], orig) and np.array_equal(merged[..., 3], alpha)


def _check_mask_file(replayer: Replayer) -> None:
    _, events = load("mask_file.jsonl")
    orig = _upload(events, "mf_src.png")
    grey = _upload(events, "mf_mask_rgb.png")[..., 0]
    exact = _emulate(orig, grey.astype(np.float32) / np.float32(255.0))
    assert np.array_equal(_view(replayer, "mask_file_rgb_00001_.png"), exact)
    lossy = _view(replayer, "mask_file_00001_.png").astype(int)
    assert np.array_equal(lossy[grey == 0], exact[grey == 0])
    assert np.abs(lossy - exact.astype(int)).max() <= 1
    assert (lossy[grey == 255] != exact[grey == 255]).any()  # mode L reads white as 255/256


CHECKS = {"simple.jsonl": _check_simple, "mask_alpha.jsonl": _check_mask_alpha, "mask_file.jsonl": _check_mask_file}


def test_notes_describe_every_transcript() -> None:
    for name in TRANSCRIPT_FILES:
        note, events = load(name)
        assert note and events
        json.dumps(events)


def test_transcript_copies_match_shared_originals():
    from .replay import SHARED_TRANSCRIPTS

    if not SHARED_TRANSCRIPTS.is_dir():
        pytest.skip(f"{SHARED_TRANSCRIPTS} is not beside this clone")
    originals = sorted(p.name for p in SHARED_TRANSCRIPTS.glob("*.jsonl"))
    assert originals == TRANSCRIPT_FILES
    for name in originals:
        assert (SHARED_TRANSCRIPTS / name).read_bytes() == (TRANSCRIPTS / name).read_bytes(), name


def test_catalogue_copy_matches_shared_original():
    import json

    from nodes.comfy.catalog import CATALOG_PATH

    from .replay import REPO_ROOT

    shared = REPO_ROOT.parent / "shared" / "comfy" / "object_info.json"
    if not shared.exists():
        pytest.skip("../shared is not beside this clone")
    assert json.loads(shared.read_text()) == json.loads(CATALOG_PATH.read_text())
