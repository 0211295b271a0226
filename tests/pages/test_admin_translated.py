"""The admin in Russian: every app section, model and field of ours has a Russian name, and the
GPU servers are called that everywhere."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.utils import translation

from tests.factories import make_node

OUR_APPS = ("accounts", "nodes", "workflows", "jobs", "webhooks", "usage", "billing")
# Names that read the same in Russian.
SAME_IN_RUSSIAN = {"ID", "id", "SHA-256", "URL", "ControlNet"}


def admin_texts() -> list[tuple[str, object]]:
    """(where, lazy text) for every name and help text the admin shows for our apps."""
    texts: list[tuple[str, object]] = []
    for label in OUR_APPS:
        config = apps.get_app_config(label)
        texts.append((f"{label} (app)", config.verbose_name))
        for model in config.get_models():
            meta = model._meta
            texts += [(f"{label}.{model.__name__}", meta.verbose_name)]
            texts += [(f"{label}.{model.__name__} (plural)", meta.verbose_name_plural)]
            for field in meta.get_fields():
                if not getattr(field, "concrete", False) or field.name == "id":
                    continue
                texts.append((f"{label}.{model.__name__}.{field.name}", field.verbose_name))
                if field.help_text:
                    texts.append((f"{label}.{model.__name__}.{field.name} (help)", field.help_text))
    return texts


def test_every_admin_name_of_ours_has_a_russian_translation():
    untranslated = []
    for where, text in admin_texts():
        with translation.override("en"):
            english = str(text)
        with translation.override("ru"):
            russian = str(text)
        if russian == english and english not in SAME_IN_RUSSIAN:
            untranslated.append(f"{where}: {english!r}")
    assert not untranslated, "no Russian for:\n" + "\n".join(untranslated)


def test_gpu_servers_have_one_name():
    from nodes.models import ComfyNode

    with translation.override("en"):
        assert (str(ComfyNode._meta.verbose_name), str(ComfyNode._meta.verbose_name_plural)) == (
            "GPU server",
            "GPU servers",
        )
        assert str(apps.get_app_config("nodes").verbose_name) == "GPU servers"
    with translation.override("ru"):
        assert str(ComfyNode._meta.verbose_name_plural) == "GPU-серверы"
    for where, text in admin_texts():
        with translation.override("en"):
            assert "comfy node" not in str(text).lower() and "gpu node" not in str(text).lower(), where


@pytest.mark.django_db
def test_the_admin_in_russian(admin_client_):
    make_node("gpu-a")
    admin_client_.cookies["django_language"] = "ru"
    index = admin_client_.get("/admin/").content.decode()
    for section in ("Учётные записи", "GPU-серверы", "Сценарии", "Задания", "Веб-хуки", "Оплата"):
        assert section in index, section
    page = admin_client_.get("/admin/nodes/comfynode/add/").content.decode()
    assert "Добавить GPU-сервер" in page and "Сколько промптов может одновременно ждать на GPU-сервере." in page
