"""Image and mask handling for uploads: validation, normalization and ComfyUI encodings.

A pure module (Pillow + numpy, no Django). Everything that decodes user bytes goes through
:func:`_open_checked`, which sniffs the format from the content (never from a file name), enforces
byte and pixel limits *before* decoding, fully decodes the first frame to detect truncation, and
turns every failure into :class:`ImageRejected`. Callers therefore only ever see ``ImageRejected``
for bad input; ``ValueError`` is reserved for programming errors (bad ``size``, unknown
``resample``, a mask image of the wrong mode).

Masks: white (255) = the area to change. What travels to ComfyUI is encoded for exactness (see
docs/masks.md and comfyui-protocol.md §6/§10):

- file mode (``LoadImageMask``, channel red): 8-bit RGB PNG with R=G=B=mask
  (:func:`encode_mask_file_mode`); mode-L PNGs are decoded lossily by ComfyUI (255 → 0.996);
- alpha mode (``/upload/mask`` + ``original_ref``): RGBA PNG with alpha = 255 − mask and RGB zero
  (:func:`encode_mask_alpha_mode`), because LoadImage's MASK is 1 − alpha/255.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "ImageInfo",
    "ImageRejected",
    "NormalizedImage",
    "encode_mask_alpha_mode",
    "encode_mask_file_mode",
    "check_header",
    "inspect_upload",
    "make_thumbnail",
    "inspect_with_thumbnail",
    "mask_png",
    "normalize_image",
    "normalize_image_with_thumbnail",
    "normalize_upload",
    "normalize_mask",
]

#: Formats we accept, as Pillow names them. Anything else is rejected even if Pillow can read it.
ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "GIF")

#: Default pixel limit (width × height) for helpers whose caller gives none.
DEFAULT_MAX_PIXELS = 40_000_000

#: Largest ``grow`` (in either direction) accepted by :func:`normalize_mask`.
MAX_GROW = 1024

_CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

# Signatures of formats people commonly try to upload, for a helpful rejection message.
_KNOWN_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"GIF8", "GIF"),  # only reached when a GIF fails to open
)


class ImageRejected(Exception):
    """An upload that we refuse, with a human message naming the rule that was broken.

    ``status`` is the HTTP status a view should answer with: 413 when the upload has more bytes
    than allowed, 400 for everything else (not an image, truncated, wrong format, too many
    pixels, decompression bomb, …).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_upload` learned from the bytes.

    ``format`` is Pillow's name ("PNG", "JPEG", "WEBP", "BMP", "GIF"), ``mode`` the decoded
    first frame's Pillow mode (e.g. "RGB", "P", "I;16"), ``content_type`` the MIME type derived
    from the sniffed format. ``width``/``height`` are as stored, i.e. before EXIF orientation.
    """

    format: str
    width: int
    height: int
    mode: str
    content_type: str


@dataclass(frozen=True)
class NormalizedImage:
    """The result of :func:`normalize_image`: PNG bytes of an 8-bit RGB or RGBA image."""

    png: bytes
    width: int
    height: int
    mode: str  # "RGB" or "RGBA"

    @property
    def content_type(self) -> str:
        return "image/png"


# --------------------------------------------------------------------------------------------
# Decoding with limits
# --------------------------------------------------------------------------------------------


def _sniff_name(data: bytes) -> str:
    """Return the accepted format the magic bytes claim ("PNG", …), or "" if none."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data.startswith(b"BM"):
        return "BMP"
    return ""


def _describe_unknown(data: bytes) -> str:
    """Return a rejection message for bytes Pillow could not open as an accepted format."""
    head = data[:512]
    for sig, name in _KNOWN_OTHER_SIGNATURES:
        if head.startswith(sig):
            if name == "GIF":
                return "The file looks like a GIF but could not be decoded (corrupt or truncated)."
            return f"{name} files are not accepted; upload PNG, JPEG, WebP, BMP or GIF."
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "AVIF files are not accepted; upload PNG, JPEG, WebP, BMP or GIF."
    if head[4:8] == b"ftyp":
        return "HEIC/HEIF files are not accepted; upload PNG, JPEG, WebP, BMP or GIF."
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text or (text.startswith(b"<?xml") and b"svg" in text):
        return "SVG (vector) files are not accepted; upload PNG, JPEG, WebP, BMP or GIF."
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return "The file is HTML/XML text, not an image; upload PNG, JPEG, WebP, BMP or GIF."
    if head.startswith(b"\x89PNG"):
        return "The file looks like a PNG but could not be decoded (corrupt or truncated)."
    if head.startswith(b"\xff\xd8"):
        return "The file looks like a JPEG but could not be decoded (corrupt or truncated)."
    return "The file is not a recognised image; upload PNG, JPEG, WebP, BMP or GIF."


_BOMB_MESSAGE = "The image looks like a decompression bomb: its declared size is far larger than Pillow's safety limit."


def _open_checked(data: bytes, *, max_pixels: int, max_bytes: int | None = None) -> tuple[Image.Image, str]:
    """Open ``data``, check limits, fully decode the first frame and return ``(image, format)``.

    The returned image is loaded (its file is no longer needed). Raises :class:`ImageRejected`
    for every problem with the bytes, never another exception.
    """
    data = _as_bytes(data, max_bytes=max_bytes)
    fmt = ""
    try:
        img, fmt = _open_header(data, max_pixels=max_pixels)
        declared = img.size
        if fmt == "PNG":
            # verify() checks every chunk CRC, which load() does not; it needs a fresh file.
            Image.open(io.BytesIO(data), formats=["PNG"]).verify()
        img.seek(0)
        img.load()
        if img.size != declared and img.width * img.height > max_pixels:
            raise ImageRejected(  # pragma: no cover - defensive
                f"The image is {img.width}×{img.height} pixels; the limit is {max_pixels:,}."
            )
    except Exception as exc:
        raise _rejection(exc, data, fmt) from None
    return img, fmt


def _as_bytes(data, *, max_bytes: int | None) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageRejected("No file data was received.")
    data = bytes(data)
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageRejected(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes.", status=413)
    if not data:
        raise ImageRejected("The file is empty.")
    return data


def _open_header(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str]:
    """Read only the header (Image.open is lazy): the format and the declared size, checked."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except Image.UnidentifiedImageError:
        raise ImageRejected(_describe_unknown(data)) from None
    fmt = (img.format or "").upper()
    if fmt not in ACCEPTED_FORMATS:  # pragma: no cover - formats= already restricts
        raise ImageRejected(f"{fmt or 'This'} files are not accepted; upload PNG, JPEG, WebP, BMP or GIF.")
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageRejected("The image has no pixels (zero width or height).")
    if width * height > max_pixels:
        raise ImageRejected(
            f"The image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,} pixels."
        )
    # Pillow only *warns* between MAX_IMAGE_PIXELS and twice that; we refuse. (Not using
    # warnings.catch_warnings: it mutates process-global state and is not thread-safe.)
    bomb_limit = Image.MAX_IMAGE_PIXELS
    if bomb_limit and width * height > bomb_limit:
        raise ImageRejected(_BOMB_MESSAGE)
    return img, fmt


def _rejection(exc: Exception, data: bytes, fmt: str) -> ImageRejected:
    """Any failure while opening or decoding, as the ImageRejected to raise."""
    if isinstance(exc, ImageRejected):
        return exc
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        # The warning arrives as an exception when warning filters say "error".
        return ImageRejected(_BOMB_MESSAGE)
    if isinstance(exc, MemoryError):
        return ImageRejected("The image is too large to decode.")
    if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
        return ImageRejected("The image file is truncated (incomplete data).")
    claimed = fmt or _sniff_name(data)
    what = f"{claimed} file" if claimed else "file"
    return ImageRejected(f"The {what} is corrupt or truncated and could not be decoded.")


def check_header(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header alone, nothing decoded: cheap enough for a
    request thread, so that what is refused anyway (too many bytes or declared pixels, not an
    accepted image) is refused at once. Raises :class:`ImageRejected` as :func:`inspect_upload`."""
    data = _as_bytes(data, max_bytes=max_bytes)
    try:
        img, fmt = _open_header(data, max_pixels=max_pixels)
    except Exception as exc:
        raise _rejection(exc, data, "") from None
    return fmt, img.width, img.height


def _oriented(img: Image.Image) -> Image.Image:
    """Return ``img`` with its EXIF orientation applied (or unchanged if EXIF is unusable)."""
    try:
        out = ImageOps.exif_transpose(img)
    except Exception:
        return img
    return out if out is not None else img


# --------------------------------------------------------------------------------------------
# Public: inspection and normalization of images
# --------------------------------------------------------------------------------------------


def inspect_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Validate an uploaded image and return its :class:`ImageInfo`.

    The format is sniffed from the bytes; only PNG, JPEG, WebP, BMP and GIF are accepted. The
    first frame is fully decoded so truncated or corrupt files are caught here and not later in
    ComfyUI.

    Raises :class:`ImageRejected` (never anything else): status 413 when ``len(data) >
    max_bytes``; status 400 when the bytes are empty, not an image, an unaccepted format,
    truncated/corrupt, larger than ``max_pixels`` (width × height), or a decompression bomb.
    """
    try:
        img, fmt = _open_checked(data, max_pixels=max_pixels, max_bytes=max_bytes)
        return _info_of(img, fmt)
    except ImageRejected:
        raise
    except Exception:
        raise ImageRejected("The image could not be read.") from None


def _to_8bit_gray_array(img: Image.Image) -> np.ndarray:
    """Return a uint8 (H, W) array for single-channel modes, scaling 16/32-bit data properly."""
    mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode == "1":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img).astype(np.int64)
        arr = np.clip(arr, 0, 65535)
        # 0..65535 → 0..255, rounded: 65535 → 255, 32768 → 128, 32767 → 127.
        return ((arr * 255 + 32767) // 65535).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = np.nan_to_num(arr)
        if arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def _has_transparency(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit "RGB", or "RGBA" when some pixel is not fully opaque."""
    if img.mode.startswith("I") or img.mode == "F":
        gray = Image.fromarray(_to_8bit_gray_array(img), "L")
        if "transparency" in img.info:
            # A 16-bit grey tRNS key: pixels equal to it are transparent.
            key = img.info["transparency"]
            alpha = np.where(np.asarray(img).astype(np.int64) == key, 0, 255).astype(np.uint8)
            rgba = Image.merge("RGBA", (gray, gray, gray, Image.fromarray(alpha, "L")))
            return rgba if alpha.min() < 255 else gray.convert("RGB")
        return gray.convert("RGB")
    if _has_transparency(img):
        # Handles RGBA, LA, PA, premultiplied RGBa/La, and P/L/RGB with a "transparency" key.
        rgba = img.convert("LA").convert("RGBA") if img.mode == "La" else img.convert("RGBA")
        lo, _hi = rgba.getchannel("A").getextrema()
        return rgba if lo < 255 else rgba.convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def normalize_image(data: bytes, *, max_pixels: int) -> NormalizedImage:
    """Decode an uploaded image and return it as a clean 8-bit PNG.

    Applies the EXIF orientation, takes the first frame of animations, converts palette, 1-bit,
    grey, 16-bit (scaled, not clipped), CMYK… to 8-bit "RGB", or "RGBA" if any pixel is not fully
    opaque. Metadata (EXIF, ICC, text chunks) is dropped. ``width``/``height`` are those of the
    oriented image (a portrait phone photo comes out portrait).

    Raises :class:`ImageRejected` (status 400) for anything :func:`inspect_upload` rejects
    (the byte limit is the caller's business here).
    """
    return _normalized(data, max_pixels=max_pixels)[0]


def normalize_image_with_thumbnail(
    data: bytes, *, max_pixels: int, max_side: int = 320
) -> tuple[NormalizedImage, bytes, str]:
    """:func:`normalize_image` and :func:`make_thumbnail` of its PNG with one decode."""
    normalized, out = _normalized(data, max_pixels=max_pixels)
    return (normalized, *_thumbnail_of(out, max_side))


def normalize_upload(data: bytes, *, max_pixels: int, sha256: str | None = None) -> NormalizedImage:
    """:func:`normalize_image`, but a PNG that is already what it would produce (8-bit RGB, or
    RGBA with some pixel not opaque, no chunk but pixels and the harmless `pHYs`/`sRGB`) is
    kept byte for byte: decoded and checked in full, not encoded again (encoding costs four
    times the decode). The same bytes sent again (their SHA-256, hex: `sha256` if the caller has
    it) are not decoded again."""
    data = _as_bytes(data, max_bytes=None)
    digest = sha256 or hashlib.sha256(data).hexdigest()
    kept = _kept_as_sent.get(digest)
    if kept is not None and kept.width * kept.height <= max_pixels:
        return NormalizedImage(png=data, width=kept.width, height=kept.height, mode=kept.mode)
    img, fmt = _open_checked(data, max_pixels=max_pixels)
    if fmt == "PNG" and _already_normalized(data, img):
        _kept_as_sent.add(digest, _Facts(img.width, img.height, img.mode))
        return NormalizedImage(png=data, width=img.width, height=img.height, mode=img.mode)
    return _normalized_from(img)[0]


@dataclass(frozen=True)
class _Facts:
    width: int
    height: int
    mode: str


class _RecentDigests:
    """The facts of the last `size` PNGs decoded in full and kept as sent, by their SHA-256.

    A client that sends the same picture with every job (an init image, a batch of seeds)
    would otherwise pay its full decode each time, for the same verdict: the digest names
    exactly those bytes, which passed every check (the pixel limit is checked again)."""

    def __init__(self, size: int):
        self.size = size
        self.facts: OrderedDict[str, _Facts] = OrderedDict()
        self.lock = threading.Lock()  # request threads and decoding threads share it

    def get(self, digest: str) -> _Facts | None:
        with self.lock:
            facts = self.facts.get(digest)
            if facts is not None:
                self.facts.move_to_end(digest)
            return facts

    def add(self, digest: str, facts: _Facts) -> None:
        with self.lock:
            self.facts[digest] = facts
            self.facts.move_to_end(digest)
            while len(self.facts) > self.size:
                self.facts.popitem(last=False)


_kept_as_sent = _RecentDigests(size=256)


# Chunks a normalized PNG may carry: the image itself and two that change nothing of it.
_PLAIN_PNG_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND", b"pHYs", b"sRGB"})


def _already_normalized(data: bytes, img: Image.Image) -> bool:
    """Would normalizing this decoded PNG give the same picture with no metadata? Reads the
    chunk list itself: Pillow reports 16-bit colour as mode "RGB" and skips chunks it does not
    know, and either must be encoded again."""
    pos, chunks = 8, set()
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IHDR":
            ihdr = data[pos + 8 : pos + 8 + 13]
            if len(ihdr) != 13 or ihdr[8] != 8 or ihdr[9] not in (2, 6) or ihdr[12] != 0:
                return False  # not 8-bit RGB(A), or interlaced
        chunks.add(kind)
        pos += 12 + length
        if kind == b"IEND":
            break
    ended = b"IEND" in chunks and pos == len(data)  # nothing hidden after the end either
    if not ended or not chunks <= _PLAIN_PNG_CHUNKS or img.mode not in ("RGB", "RGBA"):
        return False
    # Fully opaque RGBA is stored as RGB.
    return img.mode == "RGB" or img.getchannel("A").getextrema()[0] < 255


def _normalized(data: bytes, *, max_pixels: int) -> tuple[NormalizedImage, Image.Image]:
    img, _fmt = _open_checked(data, max_pixels=max_pixels)
    return _normalized_from(img)


def _normalized_from(img: Image.Image) -> tuple[NormalizedImage, Image.Image]:
    try:
        img = _oriented(img)
        out = _to_rgb_or_rgba(img)
        png = _png_bytes(out)
    except ImageRejected:
        raise
    except MemoryError:
        raise ImageRejected("The image is too large to process.") from None
    except Exception:
        raise ImageRejected("The image could not be converted.") from None
    return NormalizedImage(png=png, width=out.width, height=out.height, mode=out.mode), out


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def _split_colour_alpha(img: Image.Image) -> tuple[Image.Image, np.ndarray] | None:
    """For images with transparency return ``(colour image, alpha uint8 array)``, else None."""
    if img.mode.startswith("I") and "transparency" in img.info:
        key = img.info["transparency"]
        alpha = np.where(np.asarray(img).astype(np.int64) == key, 0, 255).astype(np.uint8)
        return img, alpha
    if not _has_transparency(img):
        return None
    if img.mode in ("LA", "La"):
        la = img.convert("LA") if img.mode == "La" else img
        return la.getchannel("L"), np.asarray(la.getchannel("A"), dtype=np.uint8)
    rgba = img.convert("RGBA")
    return rgba.convert("RGB"), np.asarray(rgba.getchannel("A"), dtype=np.uint8)


def _is_flat(arr: np.ndarray) -> bool:
    return arr.size == 0 or bool(arr.min() == arr.max())


def _mask_gray(img: Image.Image) -> np.ndarray:
    """Reduce a decoded mask image to a uint8 (H, W) array where 255 = area to change.

    Rule for images with transparency (RGBA, LA, PA, palette/RGB/L with a transparent colour):

    - the alpha varies (not a single value): the alpha is the mask (opaque = painted = 255).
      This covers strokes of any colour on a transparent background;
    - the alpha is a single value below 255 and the colour is flat: that alpha value
      (a fully transparent image means "nothing painted");
    - otherwise (fully opaque, or uniform alpha over varying colour): the luminance.

    Without transparency: luminance (ITU-R 601), 16-bit scaled to 8-bit.
    """
    split = _split_colour_alpha(img)
    if split is None:
        return _to_8bit_gray_array(img)
    colour, alpha = split
    if not _is_flat(alpha):
        return alpha
    if int(alpha.flat[0]) == 255:
        return _to_8bit_gray_array(colour)
    colour_arr = np.asarray(colour)
    first = colour_arr.reshape(-1, *colour_arr.shape[2:])[0]
    if bool((colour_arr == first).all()):
        return alpha
    return _to_8bit_gray_array(colour)


def _window_extreme(arr: np.ndarray, radius: int, axis: int, op) -> np.ndarray:
    """Return the running max/min (``op``) over a window of ``2*radius+1`` along ``axis``.

    Uses doubling (O(log radius) array operations); outside the image counts as neutral, so the
    result equals Pillow's MaxFilter/MinFilter(2*radius+1) for the square window.
    """
    if radius <= 0:
        return arr
    width = 2 * radius + 1
    neutral = 0 if op is np.maximum else 255
    n = arr.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius + width)
    padded = np.pad(arr, pad, mode="constant", constant_values=neutral)
    # acc[i] = op over padded[i : i + span]
    acc = padded
    span = 1
    while span * 2 <= width:
        shifted = np.take(acc, np.arange(span, acc.shape[axis]), axis=axis)
        head = np.take(acc, np.arange(0, acc.shape[axis] - span), axis=axis)
        acc = op(head, shifted)
        span *= 2
    # window of `width` = op(acc[i], acc[i + width - span])
    offset = width - span
    a = np.take(acc, np.arange(0, n), axis=axis)
    b = np.take(acc, np.arange(offset, offset + n), axis=axis)
    return op(a, b)


def _grow(arr: np.ndarray, grow: int) -> np.ndarray:
    """Dilate (grow > 0) or erode (grow < 0) the white area by ``|grow|`` pixels (square)."""
    if grow == 0:
        return arr
    op = np.maximum if grow > 0 else np.minimum
    r = abs(grow)
    out = _window_extreme(arr, r, axis=1, op=op)
    return _window_extreme(out, r, axis=0, op=op)


def normalize_mask(
    data: bytes,
    *,
    size: tuple[int, int],
    invert: bool = False,
    grow: int = 0,
    soft_edges: bool = False,
    resample: str = "nearest",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode an uploaded or painted mask and return a mode "L" image of exactly ``size``.

    White (255) = the area to change. Steps, in order: decode (PNG/JPEG/WebP/BMP/GIF first
    frame, any bit depth), EXIF orientation, reduce to 8-bit grey (see :func:`_mask_gray` for
    the alpha-versus-luminance rule; 16-bit is scaled, not clipped), resize to ``size`` with
    ``resample`` ("nearest" keeps hard edges; "bilinear", "bicubic", "lanczos"), binarize at
    50% (``>= 128`` → 255, else 0) unless ``soft_edges``, then ``invert``, then ``grow``:
    dilate the white area by ``grow`` pixels (square window, like ``MaxFilter(2*grow+1)``);
    a negative ``grow`` erodes.

    Raises :class:`ImageRejected` (400) for bad bytes (as :func:`inspect_upload`), and
    ``ValueError`` for bad arguments (``size`` not two positive ints, or larger than
    ``max_pixels``; unknown ``resample``; ``|grow| > MAX_GROW``).
    """
    try:
        w, h = (int(size[0]), int(size[1]))
    except Exception:
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    if w * h > max_pixels:
        raise ValueError(f"size {w}×{h} exceeds max_pixels={max_pixels}")
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    if not isinstance(grow, int) or abs(grow) > MAX_GROW:
        raise ValueError(f"grow must be an int within ±{MAX_GROW}, got {grow!r}")

    img, _fmt = _open_checked(data, max_pixels=max_pixels)
    try:
        img = _oriented(img)
        gray = Image.fromarray(_mask_gray(img), "L")
        if gray.size != (w, h):
            gray = gray.resize((w, h), _RESAMPLE[resample])
        arr = np.asarray(gray, dtype=np.uint8)
        if not soft_edges:
            arr = np.where(arr >= 128, 255, 0).astype(np.uint8)
        if invert:
            arr = (255 - arr).astype(np.uint8)
        arr = _grow(arr, grow)
        out = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), "L")
    except ImageRejected:
        raise
    except MemoryError:
        raise ImageRejected("The mask is too large to process.") from None
    except Exception:
        raise ImageRejected("The mask could not be converted.") from None
    assert out.size == (w, h) and out.mode == "L"
    return out


def _require_mask(mask: Image.Image) -> Image.Image:
    if not isinstance(mask, Image.Image):
        raise ValueError("mask must be a PIL image")
    if mask.mode == "1":
        return mask.convert("L")
    if mask.mode != "L":
        raise ValueError(f"mask must be mode 'L', got {mask.mode!r}")
    return mask


def mask_png(mask: Image.Image) -> bytes:
    """Return the mask as a grayscale (mode L) PNG, for storage and display.

    Not for sending to ComfyUI (it decodes mode-L PNGs lossily); use the ``encode_mask_*``
    functions for that. Raises ``ValueError`` if ``mask`` is not mode "L" (or "1").
    """
    return _png_bytes(_require_mask(mask))


def encode_mask_file_mode(mask: Image.Image) -> bytes:
    """Return an 8-bit RGB PNG with R = G = B = mask, for ``LoadImageMask`` (channel "red").

    ComfyUI decodes 8-bit RGB PNGs exactly (value/255), so white arrives as 1.0 = masked.
    Raises ``ValueError`` if ``mask`` is not mode "L" (or "1").
    """
    m = np.asarray(_require_mask(mask), dtype=np.uint8)
    rgb = np.empty((*m.shape, 3), dtype=np.uint8)
    rgb[...] = m[..., None]  # numpy, not Image.merge: numpy lets other threads run meanwhile
    return _png_bytes(Image.fromarray(rgb, "RGB"))


def encode_mask_alpha_mode(mask: Image.Image) -> bytes:
    """Return an RGBA PNG with RGB = 0 and alpha = 255 − mask, for ComfyUI's ``/upload/mask``.

    ``/upload/mask`` keeps the original image's RGB and takes only this alpha; LoadImage's MASK
    output is 1 − alpha/255, i.e. exactly mask/255. Raises ``ValueError`` if ``mask`` is not
    mode "L" (or "1").
    """
    m = np.asarray(_require_mask(mask), dtype=np.uint8)
    rgba = np.zeros((*m.shape, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - m  # numpy, not Image.merge: numpy lets other threads run meanwhile
    return _png_bytes(Image.fromarray(rgba, "RGBA"))


# --------------------------------------------------------------------------------------------
# Thumbnails
# --------------------------------------------------------------------------------------------


def make_thumbnail(data: bytes, *, max_side: int = 320, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, str]:
    """Return ``(thumbnail bytes, content type)`` with the longest side ≤ ``max_side``.

    WebP (quality 80, alpha kept) when Pillow has WebP support, otherwise JPEG (quality 85,
    transparency flattened on white). EXIF orientation applied, first frame only, never
    upscaled. Raises :class:`ImageRejected` (400) for bad bytes; ``ValueError`` if
    ``max_side < 1``.
    """
    if max_side < 1:
        raise ValueError("max_side must be positive")
    img, _fmt = _open_checked(data, max_pixels=max_pixels)
    return _thumbnail_of(img, max_side)


def inspect_with_thumbnail(data: bytes, *, max_pixels: int, max_side: int = 320) -> tuple[ImageInfo, bytes, str]:
    """:func:`inspect_upload` and :func:`make_thumbnail` with one decode (decoding is the costly
    part of both). Raises :class:`ImageRejected` as they do."""
    img, fmt = _open_checked(data, max_pixels=max_pixels)
    return (_info_of(img, fmt), *_thumbnail_of(img, max_side))


def _info_of(img: Image.Image, fmt: str) -> ImageInfo:
    return ImageInfo(format=fmt, width=img.width, height=img.height, mode=img.mode, content_type=_CONTENT_TYPES[fmt])


def _thumbnail_of(img: Image.Image, max_side: int) -> tuple[bytes, str]:
    try:
        img = _oriented(img)
        img = _to_rgb_or_rgba(img)
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if _webp_available():
            img.save(buf, format="WEBP", quality=80, method=4)
            return buf.getvalue(), "image/webp"
        if img.mode == "RGBA":
            bg = Image.new("RGB", img.size, (255, 255, 255))
            bg.paste(img, mask=img.getchannel("A"))
            img = bg
        img.save(buf, format="JPEG", quality=85, optimize=True)
        return buf.getvalue(), "image/jpeg"
    except ImageRejected:
        raise
    except Exception:
        raise ImageRejected("Could not make a thumbnail of the image.") from None


def _webp_available() -> bool:
    try:
        from PIL import features

        return bool(features.check("webp"))
    except Exception:  # pragma: no cover
        return False
