"""Tests for jobs/imaging.py: upload inspection, normalization, masks, encoders, thumbnails.

Pure (no database, no Django). Every sample is generated in the test (tests/jobs/imaging_samples.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from jobs import imaging
from jobs.imaging import (
    ImageInfo,
    ImageRejected,
    encode_mask_alpha_mode,
    encode_mask_file_mode,
    inspect_upload,
    make_thumbnail,
    mask_png,
    normalize_image,
    normalize_mask,
)
from tests.jobs import imaging_samples as S

MB = 1024 * 1024
BIG = {"max_bytes": 50 * MB, "max_pixels": 40_000_000}


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def arr_of(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


# ============================================================================================
# Mask normalization: the table
# ============================================================================================


@dataclass
class MaskCase:
    """One row: how to build the bytes, normalize_mask kwargs, and what must come out."""

    make: Callable[[], bytes]
    size: tuple[int, int]
    points: dict[tuple[int, int], int]  # (x, y) -> exact value
    kwargs: dict = field(default_factory=dict)
    values: set[int] | None = None  # the exact set of values in the result, if given


def _huge_mask() -> bytes:
    arr = np.zeros((3000, 4000), dtype=np.uint8)
    arr[1000:2000, 1000:3000] = 255  # centre rectangle: x 1000..2999, y 1000..1999
    return S.encode(S.gray(arr), "PNG")


def _rgba_png(arr: np.ndarray) -> bytes:
    return S.encode(Image.fromarray(arr, "RGBA"), "PNG")


def _la_png(lum: np.ndarray, alpha: np.ndarray) -> bytes:
    img = Image.merge("LA", (S.gray(lum), S.gray(alpha)))
    return S.encode(img, "PNG")


def _palette_png_trns() -> bytes:
    """Palette PNG, index 0 transparent (colour white!), index 1 opaque black."""
    idx = np.zeros((8, 8), dtype=np.uint8)
    idx[:, 4:] = 1
    img = Image.fromarray(idx, "P")
    img.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
    return S.encode(img, "PNG", transparency=0)


def _grow_src() -> bytes:
    arr = np.zeros((21, 21), dtype=np.uint8)
    arr[10, 10] = 255
    return S.encode(S.gray(arr), "PNG")


def _gradient_png() -> bytes:
    return S.encode(S.gray(np.tile(np.arange(256, dtype=np.uint8), (4, 1))), "PNG")


def _one_bit_bmp() -> bytes:
    arr = S.half_mask(16, 8)
    return S.encode(S.gray(arr).convert("1"), "BMP")


def _colour_luminance_png() -> bytes:
    """RGB, no alpha: left half pure red (luma 76 → 0), right half yellow (luma 226 → 255)."""
    arr = np.zeros((4, 8, 3), dtype=np.uint8)
    arr[:, :4] = (255, 0, 0)
    arr[:, 4:] = (255, 255, 0)
    return S.encode(Image.fromarray(arr, "RGB"), "PNG")


MASK_CASES = {
    # --- same size, plain grey PNG ----------------------------------------------------------
    "png_L_same_size": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(64, 48)), "PNG"),
        size=(64, 48),
        points={(0, 0): 0, (31, 47): 0, (32, 0): 255, (63, 47): 255},
        values={0, 255},
    ),
    # --- sizes off by one (nearest resize) --------------------------------------------------
    "off_by_one_513x511_to_512": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(513, 511)), "PNG"),
        size=(512, 512),
        points={(0, 0): 0, (250, 511): 0, (260, 0): 255, (511, 511): 255},
        values={0, 255},
    ),
    # --- huge: 4000x3000 → 512x512 ----------------------------------------------------------
    "huge_4000x3000_to_512": MaskCase(
        make=_huge_mask,
        size=(512, 512),
        # source rect x∈[1000,3000)/4000 → [128,384), y∈[1000,2000)/3000 → [170.7,341.3)
        points={
            (0, 0): 0,
            (511, 511): 0,
            (256, 256): 255,
            (130, 175): 255,
            (120, 256): 0,
            (390, 256): 0,
            (256, 165): 0,
            (256, 345): 0,
        },
        values={0, 255},
    ),
    # --- tiny --------------------------------------------------------------------------------
    "tiny_1x1_white_to_512": MaskCase(
        make=lambda: S.encode(S.gray([[255]]), "PNG"),
        size=(512, 512),
        points={(0, 0): 255, (511, 511): 255, (300, 7): 255},
        values={255},
    ),
    "tiny_3x2_to_6x4": MaskCase(
        make=lambda: S.encode(S.gray([[255, 0, 255], [0, 255, 0]]), "PNG"),
        size=(6, 4),
        points={
            (0, 0): 255,
            (1, 1): 255,
            (2, 0): 0,
            (3, 1): 0,
            (4, 0): 255,
            (5, 1): 255,
            (0, 2): 0,
            (2, 3): 255,
            (3, 2): 255,
            (5, 3): 0,
        },
        values={0, 255},
    ),
    # --- EXIF orientation (JPEG) ------------------------------------------------------------
    # Stored 80x40 with the top-left quadrant white. Orientation 6 = rotate 90° clockwise to
    # display: the white quadrant ends up top-right of a 40x80 image.
    "jpeg_exif_orientation_6": MaskCase(
        make=lambda: S.jpeg_with_orientation(S.quadrant_mask(80, 40), 6),
        size=(40, 80),
        points={(30, 10): 255, (5, 10): 0, (30, 70): 0, (5, 70): 0},
        values={0, 255},
    ),
    # Orientation 8 = rotate 90° counter-clockwise: the quadrant ends up bottom-left.
    "jpeg_exif_orientation_8": MaskCase(
        make=lambda: S.jpeg_with_orientation(S.quadrant_mask(80, 40), 8),
        size=(40, 80),
        points={(5, 70): 255, (30, 70): 0, (5, 10): 0, (30, 10): 0},
        values={0, 255},
    ),
    # --- RGBA / LA: transparency carries the mask -------------------------------------------
    "rgba_transparent_bg_opaque_black_strokes": MaskCase(
        make=lambda: _rgba_png(S.rgba_strokes(40, 40)),
        size=(40, 40),
        points={(0, 0): 0, (5, 12): 255, (35, 0): 255, (20, 30): 0},
        values={0, 255},
    ),
    "rgba_coloured_strokes_on_white_transparent": MaskCase(
        make=lambda: S.coloured_strokes_on_white_transparent(40, 40),
        size=(40, 40),
        points={(0, 0): 0, (5, 12): 255, (35, 0): 255, (35, 39): 255, (20, 30): 0},
        values={0, 255},
    ),
    "rgba_opaque_uses_luminance": MaskCase(
        make=lambda: _rgba_png(np.dstack([S.half_mask(10, 4)] * 3 + [np.full((4, 10), 255, np.uint8)])),
        size=(10, 4),
        points={(0, 0): 0, (4, 3): 0, (5, 0): 255, (9, 3): 255},
    ),
    "rgba_all_black_opaque": MaskCase(
        make=lambda: _rgba_png(np.dstack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 255, np.uint8)])),
        size=(8, 8),
        points={(0, 0): 0, (7, 7): 0},
        values={0},
    ),
    "rgba_fully_transparent_white": MaskCase(
        make=lambda: _rgba_png(np.dstack([np.full((4, 4, 3), 255, np.uint8), np.zeros((4, 4), np.uint8)])),
        size=(4, 4),
        points={(0, 0): 0, (3, 3): 0},
        values={0},
    ),
    "la_flat_lum_alpha_strokes": MaskCase(
        make=lambda: _la_png(np.zeros((6, 6)), S.half_mask(6, 6)),
        size=(6, 6),
        points={(0, 0): 0, (2, 5): 0, (3, 0): 255, (5, 5): 255},
        values={0, 255},
    ),
    "la_opaque_uses_luminance": MaskCase(
        make=lambda: _la_png(S.half_mask(6, 6, right=False), np.full((6, 6), 255)),
        size=(6, 6),
        points={(0, 0): 255, (2, 5): 255, (3, 0): 0, (5, 5): 0},
    ),
    "palette_png_transparent_index": MaskCase(
        make=_palette_png_trns,
        size=(8, 8),
        points={(0, 0): 0, (3, 7): 0, (4, 0): 255, (7, 7): 255},
        values={0, 255},
    ),
    # --- GIF ---------------------------------------------------------------------------------
    "palette_gif": MaskCase(
        make=lambda: S.palette_gif(S.half_mask(20, 10)),
        size=(20, 10),
        points={(0, 0): 0, (9, 9): 0, (10, 0): 255, (19, 9): 255},
        values={0, 255},
    ),
    "animated_gif_first_frame": MaskCase(
        make=lambda: S.animated_gif(S.half_mask(20, 10, right=False), np.full((10, 20), 255)),
        size=(20, 10),
        points={(0, 0): 255, (9, 9): 255, (10, 0): 0, (19, 9): 0},
        values={0, 255},
    ),
    # --- 16-bit grey PNG: scaled (v*255/65535, rounded), never clipped ------------------------
    "png16_soft_scaled": MaskCase(
        make=lambda: S.png16(np.array([[0, 300, 32767, 32768, 65535, 257]], dtype=np.uint16)),
        size=(6, 1),
        kwargs={"soft_edges": True},
        points={(0, 0): 0, (1, 0): 1, (2, 0): 127, (3, 0): 128, (4, 0): 255, (5, 0): 1},
    ),
    "png16_binarized": MaskCase(
        make=lambda: S.png16(np.array([[0, 300, 32767, 32768, 65535, 65000]], dtype=np.uint16)),
        size=(6, 1),
        points={(0, 0): 0, (1, 0): 0, (2, 0): 0, (3, 0): 255, (4, 0): 255, (5, 0): 255},
    ),
    # --- JPEG grey levels near 50% with noise ------------------------------------------------
    "jpeg_noise_around_128": MaskCase(
        make=lambda: S.noisy_jpeg_halves(64, 32, low=108, high=148, amp=8),
        size=(64, 32),
        points={(2, 2): 0, (20, 16): 0, (28, 30): 0, (36, 2): 255, (50, 16): 255, (62, 30): 255},
        values={0, 255},
    ),
    "binarize_threshold_127_128": MaskCase(
        make=lambda: S.encode(S.gray([[127, 128, 0, 255, 1, 254]]), "PNG"),
        size=(6, 1),
        points={(0, 0): 0, (1, 0): 255, (2, 0): 0, (3, 0): 255, (4, 0): 0, (5, 0): 255},
    ),
    # --- invert ----------------------------------------------------------------------------------
    "inverted": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(10, 4)), "PNG"),
        size=(10, 4),
        kwargs={"invert": True},
        points={(0, 0): 255, (4, 3): 255, (5, 0): 0, (9, 3): 0},
    ),
    "inverted_soft": MaskCase(
        make=lambda: S.encode(S.gray([[0, 100, 128, 255]]), "PNG"),
        size=(4, 1),
        kwargs={"invert": True, "soft_edges": True},
        points={(0, 0): 255, (1, 0): 155, (2, 0): 127, (3, 0): 0},
    ),
    # --- other formats -------------------------------------------------------------------------
    "webp_lossless": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(30, 10)).convert("RGB"), "WEBP", lossless=True),
        size=(30, 10),
        points={(0, 0): 0, (14, 9): 0, (15, 0): 255, (29, 9): 255},
        values={0, 255},
    ),
    "webp_lossy_alpha_strokes": MaskCase(
        make=lambda: S.encode(Image.fromarray(S.rgba_strokes(40, 40), "RGBA"), "WEBP", quality=80),
        size=(40, 40),
        points={(0, 0): 0, (5, 14): 255, (37, 2): 255, (15, 30): 0},
    ),
    "bmp_rgb": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(10, 6)).convert("RGB"), "BMP"),
        size=(10, 6),
        points={(0, 0): 0, (4, 5): 0, (5, 0): 255, (9, 5): 255},
        values={0, 255},
    ),
    "bmp_1bit": MaskCase(
        make=_one_bit_bmp,
        size=(16, 8),
        points={(0, 0): 0, (7, 7): 0, (8, 0): 255, (15, 7): 255},
        values={0, 255},
    ),
    "rgb_colour_luminance": MaskCase(
        make=_colour_luminance_png,
        size=(8, 4),
        points={(0, 0): 0, (3, 3): 0, (4, 0): 255, (7, 3): 255},
    ),
    # --- soft edges ----------------------------------------------------------------------------
    "soft_edges_kept": MaskCase(
        make=_gradient_png,
        size=(256, 4),
        kwargs={"soft_edges": True},
        points={(0, 0): 0, (1, 1): 1, (64, 2): 64, (127, 3): 127, (128, 0): 128, (255, 3): 255},
    ),
    "soft_edges_bilinear_upscale": MaskCase(
        make=lambda: S.encode(S.gray([[0, 255]]), "PNG"),
        size=(4, 1),
        kwargs={"soft_edges": True, "resample": "bilinear"},
        # Pillow bilinear, centres at 0.25/0.75 of source: 0, 64, 191, 255
        points={(0, 0): 0, (1, 0): 64, (2, 0): 191, (3, 0): 255},
    ),
    "bilinear_then_binarized": MaskCase(
        make=lambda: S.encode(S.gray([[0, 255]]), "PNG"),
        size=(4, 1),
        kwargs={"resample": "bilinear"},
        points={(0, 0): 0, (1, 0): 0, (2, 0): 255, (3, 0): 255},
    ),
    # --- grow ------------------------------------------------------------------------------------
    "grow_3px": MaskCase(
        make=_grow_src,
        size=(21, 21),
        kwargs={"grow": 3},
        points={
            (10, 10): 255,
            (7, 7): 255,
            (13, 13): 255,
            (7, 13): 255,
            (6, 10): 0,
            (14, 10): 0,
            (10, 6): 0,
            (10, 14): 0,
            (0, 0): 0,
        },
        values={0, 255},
    ),
    "grow_after_invert": MaskCase(
        # white right half, inverted → white left half x<5; grow 2 → x<7
        make=lambda: S.encode(S.gray(S.half_mask(10, 4)), "PNG"),
        size=(10, 4),
        kwargs={"invert": True, "grow": 2},
        points={(0, 0): 255, (6, 3): 255, (7, 0): 0, (9, 3): 0},
    ),
    "shrink_negative_grow": MaskCase(
        make=lambda: S.encode(S.gray(S.half_mask(10, 4)), "PNG"),
        size=(10, 4),
        kwargs={"grow": -2},
        points={(5, 1): 0, (6, 1): 0, (7, 1): 255, (9, 1): 255, (8, 0): 255},  # border not eroded
    ),
    # --- all black / all white -----------------------------------------------------------------
    "all_black_rgb_jpeg": MaskCase(
        make=lambda: S.encode(Image.new("RGB", (33, 17), (0, 0, 0)), "JPEG"),
        size=(64, 64),
        points={(0, 0): 0, (63, 63): 0},
        values={0},
    ),
    "all_white_L_png": MaskCase(
        make=lambda: S.encode(Image.new("L", (33, 17), 255), "PNG"),
        size=(64, 64),
        points={(0, 0): 255, (63, 63): 255},
        values={255},
    ),
    "all_white_inverted": MaskCase(
        make=lambda: S.encode(Image.new("L", (5, 5), 255), "PNG"),
        size=(5, 5),
        kwargs={"invert": True},
        points={(0, 0): 0},
        values={0},
    ),
}


@pytest.mark.parametrize("case", list(MASK_CASES.values()), ids=list(MASK_CASES))
def test_normalize_mask_table(case: MaskCase) -> None:
    mask = normalize_mask(case.make(), size=case.size, **case.kwargs)
    assert isinstance(mask, Image.Image)
    assert mask.mode == "L"
    assert mask.size == case.size
    got = {pt: mask.getpixel(pt) for pt in case.points}
    assert got == case.points
    if case.values is not None:
        assert set(np.unique(arr_of(mask)).tolist()) == case.values
    if not case.kwargs.get("soft_edges"):
        assert set(np.unique(arr_of(mask)).tolist()) <= {0, 255}


def test_mask_table_has_enough_variants() -> None:
    assert len(MASK_CASES) >= 15


def test_grow_matches_pillow_maxfilter() -> None:
    rng = np.random.default_rng(7)
    arr = np.where(rng.random((37, 53)) > 0.97, 255, 0).astype(np.uint8)
    data = S.encode(S.gray(arr), "PNG")
    for n in (1, 2, 3, 5):
        ours = arr_of(normalize_mask(data, size=(53, 37), grow=n))
        ref = arr_of(S.gray(arr).filter(ImageFilter.MaxFilter(2 * n + 1)))
        assert np.array_equal(ours, ref), n
        shrunk = arr_of(normalize_mask(data, size=(53, 37), invert=True, grow=-n))
        ref_min = arr_of(S.gray(255 - arr).filter(ImageFilter.MinFilter(2 * n + 1)))
        assert np.array_equal(shrunk, ref_min), n


def test_grow_large_radius_is_fast_and_bounded() -> None:
    data = S.encode(S.gray(np.pad(np.full((1, 1), 255), ((500, 499), (500, 499)))), "PNG")
    mask = normalize_mask(data, size=(1000, 1000), grow=100)
    a = arr_of(mask)
    assert a[500, 500] == 255 and a[400, 400] == 255 and a[600, 600] == 255
    assert a[399, 500] == 0 and a[500, 601] == 0
    assert int(a.sum()) == 201 * 201 * 255


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (0, 10)},
        {"size": (10, -1)},
        {"size": (10, 10), "resample": "cubic-ish"},
        {"size": (10, 10), "grow": 10_000},
        {"size": (10_000, 10_000), "max_pixels": 1_000_000},
    ],
)
def test_normalize_mask_bad_arguments_raise_value_error(kwargs: dict) -> None:
    data = S.encode(S.gray(S.half_mask(10, 10)), "PNG")
    with pytest.raises(ValueError):
        normalize_mask(data, **kwargs)


def test_normalize_mask_rejects_bad_bytes() -> None:
    with pytest.raises(ImageRejected) as ei:
        normalize_mask(b"not an image", size=(8, 8))
    assert ei.value.status == 400
    with pytest.raises(ImageRejected):
        normalize_mask(S.encode(S.gray(S.half_mask(100, 100)), "PNG"), size=(5, 5), max_pixels=50)


def test_mask_png_is_mode_l_roundtrip() -> None:
    mask = normalize_mask(S.encode(S.gray(S.half_mask(10, 4)), "PNG"), size=(10, 4))
    back = decode(mask_png(mask))
    assert back.format == "PNG" and back.mode == "L" and back.size == (10, 4)
    assert np.array_equal(arr_of(back), arr_of(mask))


# ============================================================================================
# Encoders for ComfyUI (protocol §10)
# ============================================================================================


def _soft_mask() -> Image.Image:
    return S.gray(np.array([[0, 1, 127, 128], [200, 254, 255, 64]], dtype=np.uint8))


def test_encode_mask_file_mode_is_rgb_with_r_eq_g_eq_b_eq_mask() -> None:
    mask = _soft_mask()
    img = decode(encode_mask_file_mode(mask))
    assert img.format == "PNG" and img.mode == "RGB" and img.size == mask.size
    rgb = arr_of(img)
    m = arr_of(mask)
    for c in range(3):
        assert np.array_equal(rgb[:, :, c], m)


def test_encode_mask_alpha_mode_is_rgba_with_alpha_255_minus_mask() -> None:
    mask = _soft_mask()
    img = decode(encode_mask_alpha_mode(mask))
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == mask.size
    rgba = arr_of(img)
    assert np.array_equal(rgba[:, :, 3], 255 - arr_of(mask))
    assert not rgba[:, :, :3].any()
    # white (255, masked) → alpha 0 → ComfyUI MASK = 1 - 0 = 1
    assert rgba[1, 2, 3] == 0 and rgba[0, 0, 3] == 255


def test_encoders_on_a_normalized_mask_and_binary_mode() -> None:
    mask = normalize_mask(S.encode(S.gray(S.half_mask(100, 100)), "PNG"), size=(100, 100))
    file_img = decode(encode_mask_file_mode(mask))
    assert file_img.getpixel((0, 0)) == (0, 0, 0) and file_img.getpixel((99, 0)) == (255, 255, 255)
    alpha_img = decode(encode_mask_alpha_mode(mask))
    assert alpha_img.getpixel((0, 0)) == (0, 0, 0, 255) and alpha_img.getpixel((99, 0)) == (0, 0, 0, 0)
    one_bit = decode(encode_mask_file_mode(mask.convert("1")))
    assert one_bit.mode == "RGB" and one_bit.getpixel((99, 99)) == (255, 255, 255)


@pytest.mark.parametrize("fn", [encode_mask_file_mode, encode_mask_alpha_mode, mask_png])
def test_encoders_refuse_non_l_masks(fn) -> None:
    with pytest.raises(ValueError):
        fn(Image.new("RGB", (4, 4)))


# ============================================================================================
# inspect_upload: sniffing and limits
# ============================================================================================


@pytest.mark.parametrize(
    "fmt, params, mode, ctype",
    [
        ("PNG", {}, "RGB", "image/png"),
        ("JPEG", {"quality": 90}, "RGB", "image/jpeg"),
        ("WEBP", {"quality": 80}, "RGB", "image/webp"),
        ("BMP", {}, "RGB", "image/bmp"),
        ("GIF", {}, "P", "image/gif"),
    ],
)
def test_inspect_upload_accepts_formats(fmt: str, params: dict, mode: str, ctype: str) -> None:
    data = S.encode(S.noise_rgb(31, 17), fmt, **params)
    info = inspect_upload(data, **BIG)
    assert info == ImageInfo(format=fmt, width=31, height=17, mode=mode, content_type=ctype)


def test_inspect_upload_reports_16bit_mode_and_stored_size_before_exif() -> None:
    assert inspect_upload(S.png16(np.zeros((3, 5), np.uint16)), **BIG).mode == "I;16"
    info = inspect_upload(S.jpeg_with_orientation(S.quadrant_mask(80, 40), 6), **BIG)
    assert (info.width, info.height) == (80, 40)


def test_gif_named_png_is_sniffed_as_gif() -> None:
    # A file called "x.png" that is really a GIF: we never look at the name, the bytes say GIF.
    data = S.palette_gif(S.half_mask(8, 8))
    info = inspect_upload(data, **BIG)
    assert info.format == "GIF" and info.content_type == "image/gif"


def test_over_max_bytes_is_413() -> None:
    data = S.encode(S.noise_rgb(64, 64), "PNG")
    with pytest.raises(ImageRejected) as ei:
        inspect_upload(data, max_bytes=len(data) - 1, max_pixels=10**6)
    assert ei.value.status == 413
    assert "bytes" in ei.value.message
    assert inspect_upload(data, max_bytes=len(data), max_pixels=10**6).width == 64


def test_over_max_pixels_is_400() -> None:
    data = S.encode(Image.new("L", (101, 100)), "PNG")
    with pytest.raises(ImageRejected) as ei:
        inspect_upload(data, max_bytes=MB, max_pixels=10_000)
    assert ei.value.status == 400
    assert "pixels" in ei.value.message
    assert inspect_upload(data, max_bytes=MB, max_pixels=10_100).height == 100


@pytest.mark.parametrize(
    "w, h",
    [(30_000, 30_000), (10_000, 10_000)],  # error range (> 2×limit) and warning range (> limit)
    ids=["bomb_error_range", "bomb_warning_range"],
)
def test_decompression_bomb_is_400(w: int, h: int) -> None:
    data = S.png_bomb(w, h)
    assert len(data) < 2000
    with pytest.warns(Image.DecompressionBombWarning) if (w * h) <= 2 * Image.MAX_IMAGE_PIXELS else _no_warn():
        with pytest.raises(ImageRejected) as ei:
            inspect_upload(data, max_bytes=MB, max_pixels=10**12)
    assert ei.value.status == 400
    assert "bomb" in ei.value.message


class _no_warn:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_bomb_is_also_caught_by_max_pixels_first() -> None:
    with pytest.raises(ImageRejected) as ei:
        inspect_upload(S.png_bomb(30_000, 30_000), max_bytes=MB, max_pixels=40_000_000)
    assert ei.value.status == 400


def _truncated_png() -> bytes:
    data = S.encode(S.noise_rgb(64, 64), "PNG")
    return data[: len(data) // 2]


def _truncated_jpeg() -> bytes:
    data = S.encode(S.noise_rgb(64, 64), "JPEG")
    return data[: len(data) // 2]


def _corrupt_png_crc() -> bytes:
    data = bytearray(S.encode(S.noise_rgb(16, 16), "PNG"))
    data[40] ^= 0xFF  # inside IDAT: CRC no longer matches
    return bytes(data)


BAD_UPLOADS = {
    "empty": (b"", "empty"),
    "random_bytes": (bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)), "not a recognised image"),
    "text_named_png": (b"hello, I am a text file called picture.png\n" * 10, "not a recognised image"),
    "svg": (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    "html": (b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", "HTML"),
    "truncated_png": (_truncated_png(), "truncated"),
    "truncated_jpeg": (_truncated_jpeg(), "truncated"),
    "corrupt_png_crc": (_corrupt_png_crc(), "PNG"),
    "png_signature_only": (b"\x89PNG\r\n\x1a\n", "PNG"),
    "tiff": (S.encode(S.noise_rgb(8, 8), "TIFF"), "TIFF"),
    "ico": (S.encode(S.noise_rgb(16, 16), "ICO"), "ICO"),
    "pdf_header": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
}


@pytest.mark.parametrize("data, needle", list(BAD_UPLOADS.values()), ids=list(BAD_UPLOADS))
def test_bad_uploads_are_rejected_with_400_and_a_clear_message(data: bytes, needle: str) -> None:
    for fn in (
        lambda: inspect_upload(data, **BIG),
        lambda: normalize_image(data, max_pixels=10**7),
        lambda: normalize_mask(data, size=(8, 8)),
        lambda: make_thumbnail(data),
    ):
        with pytest.raises(ImageRejected) as ei:
            fn()
        assert ei.value.status == 400
        assert needle.lower() in ei.value.message.lower(), ei.value.message
        assert str(ei.value) == ei.value.message


# --- fuzz: only ImageRejected or success, never another exception -----------------------------

_SEEDS = [
    S.encode(S.noise_rgb(8, 6), "PNG"),
    S.encode(S.noise_rgb(8, 6), "JPEG"),
    S.encode(S.noise_rgb(8, 6), "GIF"),
    S.encode(S.noise_rgb(8, 6), "BMP"),
    S.encode(S.noise_rgb(8, 6), "WEBP"),
    S.png16(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000),
    S.encode(Image.fromarray(S.rgba_strokes(8, 8), "RGBA"), "PNG"),
]


def _run_all(data: bytes) -> None:
    for fn in (
        lambda: inspect_upload(data, max_bytes=MB, max_pixels=1_000_000),
        lambda: normalize_image(data, max_pixels=1_000_000),
        lambda: normalize_mask(data, size=(5, 7), grow=1, max_pixels=1_000_000),
        lambda: make_thumbnail(data, max_side=4, max_pixels=1_000_000),
    ):
        try:
            fn()
        except ImageRejected as exc:
            assert exc.status in (400, 413)
            assert exc.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _run_all(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 10_000),
)
def test_fuzz_mutated_real_images(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    _run_all(bytes(data[: max(cut, 1)] if cut < len(data) else data))


# ============================================================================================
# normalize_image
# ============================================================================================


def _p_png_with_trns() -> bytes:
    return _palette_png_trns()


IMAGE_CASES = {
    # name: (bytes factory, expected mode, expected size, {(x, y): pixel})
    "rgb_png": (lambda: S.encode(Image.new("RGB", (7, 5), (10, 20, 30)), "PNG"), "RGB", (7, 5), {(6, 4): (10, 20, 30)}),
    "rgba_opaque_becomes_rgb": (
        lambda: S.encode(Image.new("RGBA", (7, 5), (10, 20, 30, 255)), "PNG"),
        "RGB",
        (7, 5),
        {(0, 0): (10, 20, 30)},
    ),
    "rgba_transparent_kept": (
        lambda: _rgba_png(S.rgba_strokes(8, 8, bg=(1, 2, 3, 0), stroke=(200, 100, 50, 255))),
        "RGBA",
        (8, 8),
        {(0, 0): (1, 2, 3, 0), (0, 2): (200, 100, 50, 255)},
    ),
    "la_becomes_rgba": (
        lambda: _la_png(np.full((4, 4), 77), S.half_mask(4, 4)),
        "RGBA",
        (4, 4),
        {(0, 0): (77, 77, 77, 0), (3, 3): (77, 77, 77, 255)},
    ),
    "grey_L_becomes_rgb": (lambda: S.encode(S.gray([[0, 128, 255]]), "PNG"), "RGB", (3, 1), {(1, 0): (128, 128, 128)}),
    "one_bit_becomes_rgb": (_one_bit_bmp, "RGB", (16, 8), {(0, 0): (0, 0, 0), (15, 0): (255, 255, 255)}),
    "palette_gif_becomes_rgb": (
        lambda: S.palette_gif(S.half_mask(6, 2)),
        "RGB",
        (6, 2),
        {(0, 0): (0, 0, 0), (5, 1): (255, 255, 255)},
    ),
    "palette_png_trns_becomes_rgba": (
        _p_png_with_trns,
        "RGBA",
        (8, 8),
        {(0, 0): (255, 255, 255, 0), (7, 7): (0, 0, 0, 255)},
    ),
    "animated_gif_first_frame": (
        lambda: S.animated_gif(np.zeros((4, 6)), np.full((4, 6), 255)),
        "RGB",
        (6, 4),
        {(3, 2): (0, 0, 0)},
    ),
    "png16_scaled": (
        lambda: S.png16(np.array([[0, 32768, 65535, 300]], np.uint16)),
        "RGB",
        (4, 1),
        {(1, 0): (128, 128, 128), (2, 0): (255, 255, 255), (3, 0): (1, 1, 1)},
    ),
    "jpeg_exif_6_rotated": (lambda: S.jpeg_with_orientation(S.quadrant_mask(80, 40), 6), "RGB", (40, 80), {}),
    "jpeg_exif_8_rotated": (lambda: S.jpeg_with_orientation(S.quadrant_mask(80, 40), 8), "RGB", (40, 80), {}),
    "cmyk_jpeg_becomes_rgb": (
        lambda: S.encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG", quality=100),
        "RGB",
        (8, 8),
        {},
    ),
    "webp_rgba": (
        lambda: S.encode(Image.fromarray(S.rgba_strokes(8, 8), "RGBA"), "WEBP", lossless=True),
        "RGBA",
        (8, 8),
        {(0, 0): (0, 0, 0, 0), (0, 2): (0, 0, 0, 255)},
    ),
    "bmp_rgb": (lambda: S.encode(Image.new("RGB", (3, 3), (9, 8, 7)), "BMP"), "RGB", (3, 3), {(1, 1): (9, 8, 7)}),
}


@pytest.mark.parametrize("make, mode, size, points", list(IMAGE_CASES.values()), ids=list(IMAGE_CASES))
def test_normalize_image_table(make, mode: str, size: tuple[int, int], points: dict) -> None:
    out = normalize_image(make(), max_pixels=10**7)
    assert (out.mode, out.width, out.height) == (mode, *size)
    img = decode(out.png)
    assert img.format == "PNG" and img.mode == mode and img.size == size
    assert out.content_type == "image/png"
    for pt, expected in points.items():
        assert img.getpixel(pt) == expected, pt
    assert "exif" not in img.info


def test_normalize_image_exif_orientation_moves_content() -> None:
    out6 = decode(normalize_image(S.jpeg_with_orientation(S.quadrant_mask(80, 40), 6), max_pixels=10**6).png)
    out8 = decode(normalize_image(S.jpeg_with_orientation(S.quadrant_mask(80, 40), 8), max_pixels=10**6).png)
    assert out6.getpixel((30, 10))[0] > 200 and out6.getpixel((5, 10))[0] < 50
    assert out8.getpixel((5, 70))[0] > 200 and out8.getpixel((30, 70))[0] < 50


def test_normalize_image_limits() -> None:
    with pytest.raises(ImageRejected) as ei:
        normalize_image(S.encode(Image.new("RGB", (100, 100)), "PNG"), max_pixels=9_999)
    assert ei.value.status == 400


# ============================================================================================
# Thumbnails
# ============================================================================================


def test_make_thumbnail_webp_landscape_and_portrait_exif() -> None:
    data, ctype = make_thumbnail(S.encode(S.noise_rgb(1000, 500), "PNG"), max_side=320)
    assert ctype == "image/webp"
    img = decode(data)
    assert img.format == "WEBP" and img.size == (320, 160)
    data, _ = make_thumbnail(S.jpeg_with_orientation(S.quadrant_mask(800, 400), 6), max_side=100)
    assert decode(data).size == (50, 100)


def test_make_thumbnail_never_upscales_and_keeps_alpha() -> None:
    data, _ = make_thumbnail(_rgba_png(S.rgba_strokes(40, 20)), max_side=320)
    img = decode(data)
    assert img.size == (40, 20) and img.mode == "RGBA"


def test_inspect_with_thumbnail_agrees_with_both_and_decodes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data = S.jpeg_with_orientation(S.quadrant_mask(800, 400), 6)
    expected = (inspect_upload(data, max_bytes=len(data), max_pixels=10**9), *make_thumbnail(data, max_side=100))
    opened = []
    real_open = imaging._open_checked
    monkeypatch.setattr(imaging, "_open_checked", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    assert imaging.inspect_with_thumbnail(data, max_pixels=10**9, max_side=100) == expected
    assert len(opened) == 1
    with pytest.raises(ImageRejected):
        imaging.inspect_with_thumbnail(b"not an image", max_pixels=10**9)


def test_make_thumbnail_jpeg_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "_webp_available", lambda: False)
    data, ctype = make_thumbnail(_rgba_png(S.rgba_strokes(400, 200)), max_side=100)
    img = decode(data)
    assert ctype == "image/jpeg" and img.format == "JPEG" and img.mode == "RGB" and img.size == (100, 50)
    assert img.getpixel((10, 5))[0] > 240  # transparent → white background
