"""Behaviour beyond the transcripts: event order, cache, validation rules, fake model graphs."""

from __future__ import annotations

import io
import uuid

import aiohttp
import numpy as np
import pytest
from PIL import Image

from testcomfy.catalog import stock_catalog
from testcomfy.nodes import Fake, NodeContext, run_node
from testcomfy.nodes.models import make_latent

from .helpers import SIMPLE, post_prompt, run_prompt, sampler_graph, types
from .replay import Binder, Mismatch, Replayer, load


async def test_message_order_of_one_prompt(server, session) -> None:
    entry, messages = await run_prompt(session, server.url, SIMPLE)
    assert types(messages) == [
        "status",
        "status",
        "execution_start",
        "execution_cached",
        "progress_state",
        "executing",
        "progress_state",
        "progress_state",
        "executing",
        "progress_state",
        "progress_state",
        "executing",
        "executed",
        "progress_state",
        "execution_success",
        "status",
        "executing",
    ]
    assert entry["outputs"]["3"]["images"] == [{"filename": "simple_00001_.png", "subfolder": "t", "type": "output"}]
    async with session.get(server.url + "/view?filename=simple_00001_.png&subfolder=t&type=output") as r:
        img = Image.open(io.BytesIO(await r.read()))
    assert img.size == (64, 48) and img.getpixel((0, 0)) == (0, 255, 255) and set(img.text) == {"prompt"}


async def test_history_is_written_before_executing_null(server, session) -> None:
    client = str(uuid.uuid4())
    async with session.ws_connect(f"{server.url}/ws?clientId={client}") as ws:
        await ws.receive_json()
        _, body = await post_prompt(session, server.url, SIMPLE, client)
        while True:
            m = await ws.receive_json(timeout=5)
            if m["type"] == "executing" and m["data"]["node"] is None:
                break
        async with session.get(f"{server.url}/history/{body['prompt_id']}") as r:
            assert body["prompt_id"] in await r.json()


async def test_sampler_progress_and_decoded_size(server, session) -> None:
    entry, messages = await run_prompt(session, server.url, sampler_graph(steps=5, width=96, height=64))
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [(i, 5, "3") for i in range(1, 6)]
    name = entry["outputs"]["9"]["images"][0]["filename"]
    async with session.get(f"{server.url}/view?filename={name}") as r:
        assert Image.open(io.BytesIO(await r.read())).size == (96, 64)


async def test_flux_upscale_controlnet_graph_runs(server, session) -> None:
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
        "2": {
            "class_type": "DualCLIPLoader",
            "inputs": {"clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl_fp16.safetensors", "type": "flux"},
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["2", 0]}},
        "5": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 32, "batch_size": 1}},
        "6": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
        "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "8": {
            "class_type": "BasicScheduler",
            "inputs": {"model": ["1", 0], "scheduler": "simple", "steps": 3, "denoise": 1.0},
        },
        "9": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["4", 0]}},
        "10": {
            "class_type": "SamplerCustomAdvanced",
            "inputs": {
                "noise": ["6", 0],
                "guider": ["9", 0],
                "sampler": ["7", 0],
                "sigmas": ["8", 0],
                "latent_image": ["5", 0],
            },
        },
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["3", 0]}},
        "12": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "RealESRGAN_x4plus.pth"}},
        "13": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["12", 0], "image": ["11", 0]}},
        "14": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_v11p_sd15_canny.pth"}},
        "15": {"class_type": "Canny", "inputs": {"image": ["11", 0], "low_threshold": 0.4, "high_threshold": 0.8}},
        "16": {
            "class_type": "ControlNetApplyAdvanced",
            "inputs": {
                "positive": ["4", 0],
                "negative": ["4", 0],
                "control_net": ["14", 0],
                "image": ["15", 0],
                "strength": 1.0,
                "start_percent": 0.0,
                "end_percent": 1.0,
            },
        },
        "17": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "flux"}},
        "18": {"class_type": "PreviewAny", "inputs": {"source": ["16", 0]}},
    }
    entry, messages = await run_prompt(session, server.url, prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert sum(m["type"] == "progress" for m in messages) == 3
    async with session.get(f"{server.url}/view?filename=flux_00001_.png") as r:
        assert Image.open(io.BytesIO(await r.read())).size == (256, 128)


async def test_cache_and_free_and_cache_none(make_server, session) -> None:
    server = await make_server()
    first, _ = await run_prompt(session, server.url, SIMPLE)
    second, messages = await run_prompt(session, server.url, SIMPLE)
    assert second["outputs"] == first["outputs"]
    assert next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"] == ["1", "2", "3"]
    async with session.post(server.url + "/free", json={"free_memory": True}):
        pass
    third, _ = await run_prompt(session, server.url, SIMPLE)
    assert third["outputs"]["3"]["images"][0]["filename"] == "simple_00002_.png"
    uncached = await make_server(cache_none=True)
    await run_prompt(session, uncached.url, SIMPLE)
    again, _ = await run_prompt(session, uncached.url, SIMPLE)
    assert again["outputs"]["3"]["images"][0]["filename"] == "simple_00002_.png"


async def _rejected(session, url, prompt) -> dict:
    status, body = await post_prompt(session, url, prompt)
    assert status == 400, body
    return body


async def test_long_combo_and_cycle_and_type_errors(server, session) -> None:
    graph = sampler_graph()
    graph["3"]["inputs"]["sampler_name"] = "nope"
    err = (await _rejected(session, server.url, graph))["node_errors"]["3"]["errors"][0]
    assert err["type"] == "value_not_in_list" and err["extra_info"]["input_config"] is None
    assert err["details"].startswith("sampler_name: 'nope' not in (list of length ")
    cycle = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "c"}},
    }
    errors = (await _rejected(session, server.url, cycle))["node_errors"]
    assert {e["errors"][0]["type"] for e in errors.values()} == {"dependency_cycle"}
    assert errors["2"]["errors"][0]["details"] == "2 (ImageInvert) -> 1 (ImageInvert) -> 2 (ImageInvert)"
    bad_link = {"3": {"class_type": "SaveImage", "inputs": {"images": [1, 0], "filename_prefix": "c"}}}
    err = (await _rejected(session, server.url, bad_link))["node_errors"]["3"]["errors"][0]
    assert (err["type"], err["details"], err["extra_info"]["exception_type"]) == (
        "exception_during_validation",
        "1",
        "KeyError",
    )


async def test_front_number_and_explicit_number(server, session) -> None:
    await post_prompt(session, server.url, SIMPLE)
    _, body = await post_prompt(session, server.url, SIMPLE, front=True)
    assert body["number"] == -1
    _, body = await post_prompt(session, server.url, SIMPLE, number=5)
    assert body["number"] == 5.0 and isinstance(body["number"], float)


async def test_loadimage_options_follow_the_input_folder(server, session) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    form = aiohttp.FormData()
    form.add_field("image", buffer.getvalue(), filename="opt_test.png", content_type="image/png")
    async with session.post(server.url + "/upload/image", data=form) as r:
        assert (await r.json())["name"] == "opt_test.png"
    async with session.get(server.url + "/api/object_info/LoadImage") as r:
        assert "opt_test.png" in (await r.json())["LoadImage"]["input"]["required"]["image"][0]
    async with session.get(server.url + "/internal/files/input") as r:
        assert await r.json() == ["opt_test.png [input]"]


def test_replay_detects_differences() -> None:
    binder = Binder()
    binder.match({"a": "<prompt_id:1>", "b": 1}, {"a": str(uuid.uuid4()), "b": 1})
    with pytest.raises(Mismatch):
        binder.match({"b": 1, "a": "<prompt_id:1>"}, {"a": binder.values["prompt_id:1"], "b": 1})  # key order
    with pytest.raises(Mismatch):
        binder.match({"a": "<prompt_id:1>"}, {"a": str(uuid.uuid4())})  # inconsistent binding
    with pytest.raises(Mismatch):
        binder.match({"v": 1.0}, {"v": 1})  # float vs int
    _, events = load("simple.jsonl")
    assert Replayer("http://x", events).sockets["main"].expected


def _fake_value(kind, options):
    if isinstance(kind, list):
        return kind[0] if kind else "x"
    defaults = {
        "INT": options.get("default", 1),
        "FLOAT": options.get("default", 0.5),
        "STRING": options.get("default", "x"),
        "BOOLEAN": options.get("default", False),
    }
    if kind == "COMBO":
        opts = options.get("options") or ["x"]
        return opts[0]
    if kind in defaults:
        return defaults[kind]
    if kind == "IMAGE":
        return np.full((1, 16, 16, 3), 0.5, dtype=np.float32)
    if kind == "MASK":
        return np.zeros((1, 16, 16), dtype=np.float32)
    if kind == "LATENT":
        return make_latent(1, 64, 64)
    if kind == "COMFY_DYNAMICCOMBO_V3":  # a prompt gives the key of one option
        return options["options"][0]["key"]
    if kind == "AUDIO":
        return {"waveform": np.zeros((1, 2, 4410), dtype=np.float32), "sample_rate": 44100}
    if kind == "VIDEO":
        from testcomfy.nodes.media import Video

        return Video(np.full((2, 16, 16, 3), 0.5, dtype=np.float32), 8.0)
    return Fake(str(kind))


def test_every_catalogued_class_runs(tmp_path) -> None:
    """Loaders, samplers and unknown classes all produce outputs of the declared arity."""
    from testcomfy.files import Folders

    folders = Folders(tmp_path, default_models=True)
    skipped = {"LoadImage", "LoadImageMask", "LoadImageOutput", "LoadAudio", "LoadVideo"}  # need input files
    failures = []
    for cls, info in stock_catalog().items():
        if cls in skipped:
            continue
        values = {}
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                kind = spec[0]
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                values[name] = _fake_value(kind, options)
        ctx = NodeContext("1", cls, "p", {}, {}, folders, lambda *a: None, lambda n: "_temp_abcde", False, info)
        try:
            out = run_node(ctx, values)
            assert len(out.result) == len(info["output"]), (len(out.result), info["output"])
        except Exception as exc:  # collect them all for one readable failure
            failures.append(f"{cls}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:40])
