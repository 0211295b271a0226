"""File routes: /view, /upload/image, /upload/mask and /internal/files (server.py's rules)."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from io import BytesIO
from typing import TYPE_CHECKING, Any

from aiohttp import web
from PIL import Image
from PIL.PngImagePlugin import PngInfo

if TYPE_CHECKING:
    from .server import TestComfy

ACTIVE_TYPES = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
    "image/svg+xml",
    "application/xml",
    "text/xml",
    "application/javascript",
}


def add_file_routes(routes: web.RouteTableDef, server: TestComfy) -> None:
    folders = server.folders

    @routes.get("/view")
    async def view(request: web.Request) -> web.StreamResponse:
        query = request.rel_url.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, output_dir = folders.annotated(query["filename"])
        if not filename:
            return web.Response(status=400)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if output_dir is None:
            output_dir = folders.directory_by_type(query.get("type", "output"))
        if output_dir is None:
            return web.Response(status=400)
        if "subfolder" in query:
            full = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full), output_dir)) != output_dir:
                return web.Response(status=403)
            output_dir = full
        filename = os.path.basename(filename)
        path = os.path.join(output_dir, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        if "preview" in query:
            return _preview(path, query, disposition)
        channel = query.get("channel", "rgba")
        if channel == "rgb":
            with Image.open(path) as img:
                rgb = Image.merge("RGB", img.split()[:3]) if img.mode == "RGBA" else img.convert("RGB")
                buffer = BytesIO()
                rgb.save(buffer, format="PNG")
            return web.Response(body=buffer.getvalue(), content_type="image/png", headers=disposition)
        if channel == "a":
            with Image.open(path) as img:
                alpha = img.split()[3] if img.mode == "RGBA" else Image.new("L", img.size, 255)
                out = Image.new("RGBA", img.size)
                out.putalpha(alpha)
                buffer = BytesIO()
                out.save(buffer, format="PNG")
            return web.Response(body=buffer.getvalue(), content_type="image/png", headers=disposition)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = dict(disposition)
        if content_type in ACTIVE_TYPES:
            content_type = "application/octet-stream"
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        headers.update({"Content-Type": content_type, "X-Content-Type-Options": "nosniff"})
        return web.FileResponse(path, headers=headers)

    def dir_by_type(kind: str | None) -> tuple[str, str]:
        kind = kind or "input"
        directory = folders.directory_by_type(kind)
        if directory is None:  # the real server hits an UnboundLocalError here: 500
            raise RuntimeError(f"unknown upload type {kind!r}")
        return directory, kind

    def same_bytes(path: str, data: bytes) -> bool:
        if not os.path.exists(path):
            return False
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()

    def image_upload(post: Any, save: Any = None) -> web.Response:
        image = post.get("image")
        overwrite = post.get("overwrite")
        upload_dir, upload_type = dir_by_type(post.get("type"))
        if not (image is not None and hasattr(image, "file") and image.file):
            return web.Response(status=400)
        filename = image.filename
        if not filename:
            return web.Response(status=400)
        data = image.file.read()
        subfolder = post.get("subfolder", "")
        full_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        path = os.path.abspath(os.path.join(full_folder, filename))
        if os.path.commonpath((upload_dir, path)) != upload_dir:
            return web.Response(status=400)
        os.makedirs(full_folder, exist_ok=True)
        stem, ext = os.path.splitext(filename)
        duplicate = False
        if not (overwrite is not None and overwrite in ("true", "1")):
            i = 1
            while os.path.exists(path):
                if same_bytes(path, data):
                    duplicate = True
                    break
                filename = f"{stem} ({i}){ext}"
                path = os.path.join(full_folder, filename)
                i += 1
        if not duplicate:
            if save is not None:
                save(data, post, path)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        return web.json_response({"name": filename, "subfolder": subfolder, "type": upload_type})

    @routes.post("/upload/image")
    async def upload_image(request: web.Request) -> web.Response:
        return image_upload(await request.post())

    @routes.post("/upload/mask")
    async def upload_mask(request: web.Request) -> web.Response:
        def save_merged(data: bytes, post: Any, target: str) -> None:
            """Original RGB + uploaded alpha; silently writes nothing when the original is bad."""
            ref = json.loads(post.get("original_ref"))
            name, base = folders.annotated(ref["filename"])
            if not name or name[0] == "/" or ".." in name:
                return
            if base is None:
                base = folders.directory_by_type(ref.get("type", "output"))
            if base is None:
                return
            if ref.get("subfolder", "") != "":
                full = os.path.join(base, ref["subfolder"])
                if os.path.commonpath((os.path.abspath(full), base)) != base:
                    return
                base = full
            original_path = os.path.join(base, name)
            if not os.path.isfile(original_path):
                return
            with Image.open(original_path) as original:
                meta = PngInfo()
                for key, value in getattr(original, "text", {}).items():
                    meta.add_text(key, value)
                merged = original.convert("RGBA")
                alpha = Image.open(BytesIO(data)).convert("RGBA").getchannel("A")
                merged.putalpha(alpha)
                merged.save(target, compress_level=4, pnginfo=meta)

        return image_upload(await request.post(), save_merged)

    @routes.get("/internal/files/{directory_type}")
    async def internal_files(request: web.Request) -> web.Response:
        kind = request.match_info["directory_type"]
        if kind not in ("output", "input", "temp"):
            return web.json_response({"error": "Invalid directory type"}, status=400)
        return web.json_response(folders.list_type(kind))


def _preview(path: str, query: Any, headers: dict[str, str]) -> web.Response:
    with Image.open(path) as img:
        info = query["preview"].split(";")
        fmt = info[0]
        if fmt not in ("webp", "jpeg") or "a" in query.get("channel", ""):
            fmt = "webp"
        quality = int(info[-1]) if info[-1].isdigit() else 90
        if fmt == "jpeg" or query.get("channel", "") == "rgb":
            img = img.convert("RGB")
        buffer = BytesIO()
        img.save(buffer, format=fmt, quality=quality)
    return web.Response(body=buffer.getvalue(), content_type=f"image/{fmt}", headers=headers)
