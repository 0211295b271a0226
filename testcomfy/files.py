"""The data folders (input, output, temp, models) and ComfyUI's path rules over them.

Path checks mirror ``folder_paths.py`` and ``server.py`` (annotated names like
``"x.png [output]"``, commonpath checks, SaveImage counters), because /view, /upload and
LoadImage answers depend on them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from .catalog import DEFAULT_MODELS, MODEL_FOLDERS


class Folders:
    """The folder layout under one data dir (the server's ``<comfy_root>``)."""

    def __init__(self, root: Path, default_models: bool = True):
        self.root = str(root)
        self.input = os.path.join(self.root, "input")
        self.output = os.path.join(self.root, "output")
        self.temp = os.path.join(self.root, "temp")
        self.models = os.path.join(self.root, "models")
        for d in (self.input, self.output, self.models):
            os.makedirs(d, exist_ok=True)
        shutil.rmtree(self.temp, ignore_errors=True)  # temp is wiped at startup, as in ComfyUI
        os.makedirs(self.temp, exist_ok=True)
        for folder in MODEL_FOLDERS:
            os.makedirs(os.path.join(self.models, folder), exist_ok=True)
        if default_models:
            self.ensure_default_models()

    def ensure_default_models(self) -> None:
        """Create the empty placeholder model files if a folder holds no file yet."""
        for folder, names in DEFAULT_MODELS.items():
            path = os.path.join(self.models, folder)
            if not any(e.is_file() for e in os.scandir(path)):
                for name in names:
                    Path(path, name).write_bytes(b"testcomfy placeholder model\n")

    def add_model(self, folder: str, name: str) -> None:
        path = Path(self.models, folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"testcomfy placeholder model\n")

    def model_files(self, folder: str) -> list[str]:
        """Files under a model folder (recursively, with forward slashes), sorted."""
        base = os.path.join(self.models, folder)
        out: list[str] = []
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                if not name.startswith("."):
                    out.append(os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/"))
        return sorted(out)

    def directory_by_type(self, kind: str | None) -> str | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(kind or "")

    def annotated(self, name: str) -> tuple[str, str | None]:
        """Strip a ``" [input]"``/``" [output]"``/``" [temp]"`` suffix: ``(name, base_dir or None)``."""
        for kind, base in (("output", self.output), ("input", self.input), ("temp", self.temp)):
            suffix = f"[{kind}]"
            if name.endswith(suffix):
                return name[: -len(suffix) - 1], base
        return name, None

    def annotated_path(self, name: str, default_dir: str | None = None) -> str:
        """LoadImage's path for a value like ``sub/x.png`` or ``x.png [output]``."""
        name, base = self.annotated(name)
        return os.path.join(base or default_dir or self.input, name)

    def exists_annotated(self, name: str) -> bool:
        return os.path.exists(self.annotated_path(name))

    def file_hash(self, name: str) -> str:
        """LoadImage's IS_CHANGED: sha256 of the file (or the name if it is missing)."""
        path = self.annotated_path(name)
        try:
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        except OSError:
            return f"missing:{name}"

    def list_type(self, kind: str) -> list[str]:
        """/internal/files: top-level visible files, newest first, as ``"name [type]"``."""
        directory = self.directory_by_type(kind)
        assert directory is not None
        entries = [e for e in os.scandir(directory) if e.is_file() and not e.name.startswith(".")]
        entries.sort(key=lambda e: -e.stat().st_mtime)
        return [f"{e.name} [{kind}]" for e in entries]

    def save_image_path(self, prefix: str, output_dir: str, width: int, height: int) -> tuple[str, str, int, str]:
        """ComfyUI's get_save_image_path: ``(folder, basename, counter, subfolder)``.

        Raises Exception (a run-time error, as in ComfyUI) when the prefix escapes the folder.
        """
        if "%" in prefix:
            now = time.localtime()
            for key, value in (
                ("%width%", str(width)),
                ("%height%", str(height)),
                ("%year%", str(now.tm_year)),
                ("%month%", str(now.tm_mon).zfill(2)),
                ("%day%", str(now.tm_mday).zfill(2)),
                ("%hour%", str(now.tm_hour).zfill(2)),
                ("%minute%", str(now.tm_min).zfill(2)),
                ("%second%", str(now.tm_sec).zfill(2)),
            ):
                prefix = prefix.replace(key, value)
        subfolder = os.path.dirname(os.path.normpath(prefix))
        filename = os.path.basename(os.path.normpath(prefix))
        full = os.path.join(output_dir, subfolder)
        common = os.path.commonpath((output_dir, os.path.abspath(full)))
        if common != output_dir:
            raise Exception(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {os.path.abspath(full)}\n         output_dir: {output_dir}"
                f"\n         commonpath: {common}"
            )

        def map_filename(name: str) -> tuple[int, str]:
            plen = len(filename)
            try:
                digits = int(name[plen + 1 :].split("_")[0])
            except ValueError:
                digits = 0
            return digits, name[: plen + 1]

        try:
            matches = [
                m
                for m in map(map_filename, os.listdir(full))
                if os.path.normcase(m[1][:-1]) == os.path.normcase(filename) and m[1][-1:] == "_"
            ]
            counter = max(matches)[0] + 1 if matches else 1
        except FileNotFoundError:
            os.makedirs(full, exist_ok=True)
            counter = 1
        return full, filename, counter, subfolder
