"""The picture on each catalogue card, and the rules for an admin's example picture.

A card shows, in this order: the picture an admin uploaded (the newest version of the slug
that has one), the spec's `example_image`, the newest result of the workflow that its owner
marked shareable (asked of the parts above through `card_pictures_wanted`), else a neutral
picture for the workflow's category (static SVGs, nothing fetched from elsewhere)."""

from __future__ import annotations

import zlib

from django.core.exceptions import ValidationError
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from workflows.models import Workflow
from workflows.signals import card_pictures_wanted

EXAMPLE_MAX_BYTES = 5 * 1024 * 1024
EXAMPLE_MAX_PIXELS = 4096 * 4096
EXAMPLE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}

# Category → neutral picture (static/img/categories/<name>.svg), matched on words in the
# category since categories are free text; the first match wins.
CATEGORY_PICTURES = [
    (("video", "anim", "motion"), "video"),
    (("audio", "sound", "music", "speech", "voice"), "audio"),
    (("inpaint", "outpaint", "mask"), "inpaint"),
    (("upscal", "super", "resolution"), "upscale"),
    (("img2img", "variation", "control", "edit", "style"), "img2img"),
    (("txt2img", "text", "image", "generat"), "txt2img"),
]
NEUTRAL_SIZE = (320, 200)


def card_pictures(workflows: list[Workflow]) -> dict[int, dict]:
    """{workflow pk: {"url", "width", "height", "source"}} for every card, in a constant number
    of queries (one for the uploads, one per part that shares pictures)."""
    slugs = [w.slug for w in workflows]
    uploaded = {}
    rows = (
        Workflow.objects.filter(slug__in=slugs)
        .exclude(example_picture="")
        .order_by("slug", "-created_at", "-pk")
        .values_list("slug", "pk", "example_picture")
    )
    for slug, pk, name in rows:
        uploaded.setdefault(slug, (pk, name))
    wanted = [w.slug for w in workflows if w.slug not in uploaded and not (w.spec or {}).get("example_image")]
    shared: dict[str, dict] = {}
    if wanted:
        for _receiver, answer in card_pictures_wanted.send(sender=Workflow, slugs=wanted):
            for slug, picture in (answer or {}).items():
                shared.setdefault(slug, picture)
    pictures = {}
    for workflow in workflows:
        if workflow.slug in uploaded:
            pk, name = uploaded[workflow.slug]
            # the version in the URL: a new upload is a new URL, never a stale cached picture
            url = reverse("workflow_example", args=[workflow.slug]) + f"?v={pk}-{zlib.crc32(name.encode()):08x}"
            pictures[workflow.pk] = {"url": url, "width": 0, "height": 0, "source": "upload"}
        elif (workflow.spec or {}).get("example_image"):
            pictures[workflow.pk] = {"url": workflow.spec["example_image"], "width": 0, "height": 0, "source": "spec"}
        elif workflow.slug in shared:
            pictures[workflow.pk] = {**shared[workflow.slug], "source": "shared"}
        else:
            width, height = NEUTRAL_SIZE
            url = static(f"img/categories/{category_picture(workflow.category)}.svg")
            pictures[workflow.pk] = {"url": url, "width": width, "height": height, "source": "category"}
    return pictures


def category_picture(category: str) -> str:
    words = (category or "").lower()
    for keys, name in CATEGORY_PICTURES:
        if any(key in words for key in keys):
            return name
    return "default"


def example_of(slug: str) -> Workflow | None:
    """The version of `slug` whose uploaded picture the catalogue shows (None: no picture, or
    no active version: a withdrawn workflow shows nothing)."""
    if not Workflow.objects.filter(slug=slug, is_active=True).exists():
        return None
    versions = Workflow.objects.filter(slug=slug).exclude(example_picture="").only("pk", "example_picture")
    return versions.order_by("-created_at", "-pk").first()


def content_type_of(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].upper()
    return EXAMPLE_FORMATS.get("JPEG" if ext == "JPG" else ext, "application/octet-stream")


def check_example_picture(upload) -> None:
    """An admin's example picture: PNG, JPEG, WebP or GIF, read by Pillow, within the limits."""
    if upload.size > EXAMPLE_MAX_BYTES:
        raise ValidationError(_("The picture is larger than 5 MB."))
    try:
        upload.seek(0)
        with Image.open(upload) as picture:
            kind = picture.format
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(_("This file is not a picture Pillow can read.")) from exc
    finally:
        upload.seek(0)
    if kind not in EXAMPLE_FORMATS:
        raise ValidationError(_("Upload a PNG, JPEG, WebP or GIF picture."))
    if width * height > EXAMPLE_MAX_PIXELS:
        raise ValidationError(_("The picture has more than 4096 × 4096 pixels."))
