"""A workflow's texts in one language: a spec's text is a string or (spec 1.2) ``{"en": …, "ru": …}``.

``text_in`` picks the reader's language, falling back to English, then to any language given;
``category_name`` also translates the known category keys. Pure: no Django (callers pass the
language, e.g. ``django.utils.translation.get_language()``).
"""

from __future__ import annotations

from typing import Any

from workflows.spec import FALLBACK_LANGUAGE

# The bundled workflows' categories, by key. A spec whose category is one of these keys is shown
# under the translated name; any other category shows as the spec gives it.
KNOWN_CATEGORIES: dict[str, dict[str, str]] = {
    "txt2img": {"en": "Text to image", "ru": "Картинка по тексту"},
    "img2img": {"en": "Image to image", "ru": "Картинка по картинке"},
    "inpaint": {"en": "Inpainting and outpainting", "ru": "Перерисовка и дорисовка"},
    "upscale": {"en": "Upscaling", "ru": "Увеличение"},
    "controlnet": {"en": "ControlNet", "ru": "ControlNet"},
    "variation": {"en": "Variations", "ru": "Вариации"},
    "video": {"en": "Video", "ru": "Видео"},
    "audio": {"en": "Sound", "ru": "Звук"},
    "tools": {"en": "Tools", "ru": "Инструменты"},
    "general": {"en": "General", "ru": "Общее"},
}


def base_language(language: str | None) -> str:
    """'ru-RU' → 'ru'; None → the fallback language."""
    return (language or FALLBACK_LANGUAGE).split("-")[0].split("_")[0].lower()


def text_in(text: Any, language: str | None) -> str:
    """The text in ``language``: a plain string as it is; of texts by language the asked one,
    else English, else the first given."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    if isinstance(text, dict):
        # A language given as "" (a help text left out on purpose) stays empty.
        for wanted in (base_language(language), FALLBACK_LANGUAGE):
            if isinstance(text.get(wanted), str):
                return text[wanted]
        return next((v for v in text.values() if isinstance(v, str) and v), "")
    return str(text)


def text_key(text: Any) -> str:
    """The value kept in the database columns (admin search and sort, grouping): the English text."""
    return text_in(text, FALLBACK_LANGUAGE)


def category_name(category: Any, language: str | None) -> str:
    """A category as the reader sees it: a known key translated, texts by language resolved."""
    if isinstance(category, str) and category in KNOWN_CATEGORIES:
        return text_in(KNOWN_CATEGORIES[category], language)
    return text_in(category, language)


def has_language(text: Any, language: str) -> bool:
    """True when the text is given in ``language`` (a plain string counts for no language but its own)."""
    return isinstance(text, dict) and bool(text.get(language))
