"""Settings of one test server, shared by the CLI, the in-process API and the subprocess helper."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Settings:
    """Everything that shapes one server. Fault fields are the *initial* fault state."""

    host: str = "127.0.0.1"
    port: int = 0
    data_dir: str | None = None  # None: a fresh temporary folder, removed on stop
    step_time: float = 0.05  # seconds per sampler step
    job_time: float = 0.0  # every prompt lasts at least this long
    cache_none: bool = False
    default_models: bool = True  # create placeholder model files in an empty models dir
    max_upload_size_mb: float | None = None
    disable_metadata: bool = False
    cache_limit_mb: int = 512  # RAM-pressure stand-in: oldest cached outputs go beyond this
    exit_on_die: bool = False  # die_mid_job: os._exit (the CLI sets it); else drop every connection
    # Initial fault state (also settable at run time through /__control__).
    refuse: bool = False
    hang: bool = False
    die_mid_job: bool = False
    execution_error: int = 0
    slow_system_stats: float = 0.0
    garbage: str | None = None  # "html" or "json"
    extra_argv: list[str] = field(default_factory=list)
    # This node's model files ({folder: [file, …]}); given, they replace the placeholder defaults.
    models: dict[str, list[str]] | None = None
    load_time: float = 0.0  # seconds to load each model file a prompt names that is not held

    def resolved_data_dir(self) -> tuple[Path, bool]:
        """The data folder and whether it is temporary (ours to delete)."""
        if self.data_dir:
            path = Path(self.data_dir).resolve()
            path.mkdir(parents=True, exist_ok=True)
            return path, False
        return Path(tempfile.mkdtemp(prefix="testcomfy-")).resolve(), True

    def fault_dict(self) -> dict[str, Any]:
        return {
            "job_time": self.job_time,
            "refuse": self.refuse,
            "hang": self.hang,
            "die_mid_job": self.die_mid_job,
            "execution_error": self.execution_error,
            "slow_system_stats": self.slow_system_stats,
            "garbage": self.garbage,
        }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m testcomfy", description="A stand-in ComfyUI 0.33 server for tests.")
    p.add_argument("--host", "--listen", dest="host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8188, help="0 picks a free port (printed on stdout)")
    p.add_argument(
        "--data-dir",
        "--base-directory",
        dest="data_dir",
        default=None,
        help="holds input/ output/ temp/ models/ (default: a temporary folder)",
    )
    p.add_argument("--step-time", type=float, default=0.05, help="seconds per sampler step")
    p.add_argument("--job-time", type=float, default=0.0, help="every prompt takes at least this long")
    p.add_argument("--cache-none", action="store_true", help="disable the node output cache")
    p.add_argument(
        "--no-default-models", dest="default_models", action="store_false", help="do not create placeholder model files"
    )
    p.add_argument(
        "--models",
        default=None,
        metavar="JSON",
        help='this node\'s model files, e.g. \'{"checkpoints": ["a.safetensors", "sdxl/b.safetensors"]}\' '
        "(replaces the placeholder defaults)",
    )
    p.add_argument(
        "--load-time",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="simulated load time per model file a prompt names that the node does not hold",
    )
    p.add_argument("--max-upload-size", dest="max_upload_size_mb", type=float, default=None)
    p.add_argument("--disable-metadata", action="store_true")
    p.add_argument("--cache-limit-mb", type=int, default=512)
    p.add_argument("--refuse", action="store_true", help="start with the listening socket closed")
    p.add_argument("--hang", action="store_true", help="accept connections but never answer")
    p.add_argument("--die-mid-job", action="store_true", help="os._exit halfway through the next prompt")
    p.add_argument("--execution-error", type=int, default=0, metavar="N", help="the next N prompts fail at run time")
    p.add_argument("--slow-system-stats", type=float, default=0.0, metavar="SECONDS")
    p.add_argument(
        "--garbage",
        choices=("html", "json"),
        default=None,
        help="answer /system_stats and /queue with HTML or invalid JSON",
    )
    p.add_argument(
        "--servers",
        type=int,
        default=1,
        metavar="N",
        help="run N independent servers in this process (ports PORT..PORT+N-1, or free ports with 0)",
    )
    # Accepted for command-line compatibility with real ComfyUI; ignored.
    for flag in ("--cpu", "--disable-auto-launch", "--disable-api-nodes"):
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    return p


def settings_from_args(argv: list[str] | None = None) -> tuple[Settings, int]:
    """The servers' settings and how many servers to run (``--servers``)."""
    args = build_parser().parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    from .models import parse_models

    values["models"] = parse_models(values.get("models"))
    return Settings(**values, exit_on_die=True), max(1, args.servers)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
