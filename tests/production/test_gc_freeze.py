"""Long-lived event loops (daphne's, each runner's) start with their startup objects frozen,
so that a full garbage collection walks only what was created since (see gc_tuning)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def frozen_after(code: str) -> int:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "comfyportal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport gc; print(gc.get_freeze_count())"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_the_web_process_freezes_django_with_every_view_loaded():
    assert frozen_after("import comfyportal.asgi") > 100_000  # Django, every view and API schema


def test_a_runner_process_freezes_before_its_loop_starts(monkeypatch):
    from jobs import tasks

    seen = []

    class Runner:
        async def serve(self, *, lease):
            seen.append(gc.get_freeze_count())

    monkeypatch.setattr(tasks, "Runner", Runner)
    try:
        tasks.run_engine()
    finally:
        gc.unfreeze()  # this test process goes on collecting as before
    assert seen and seen[0] > 10_000
