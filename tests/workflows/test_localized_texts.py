"""Texts by language (spec 1.2): validation, resolution, the bundled workflows' Russian texts, and
the workflows API answering in the request's language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from pydantic import ValidationError

from tests.factories import EXAMPLES, upload_example
from workflows.spec import TEXT_LANGUAGES, WorkflowSpec, spec_json_schema, spec_texts
from workflows.texts import KNOWN_CATEGORIES, category_name, text_in
from workflows.ui_schema import ui_schema
from workflows.validation import WorkflowInvalid, validate_upload

from .conftest import clone, english_only, example_dirs, load_example


def filters() -> tuple[dict, dict]:
    return load_example("image-filters")


def refusals(graph: dict, spec: dict) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        validate_upload(graph, spec)
    return [str(e) for e in caught.value.errors]


def test_the_spec_languages_are_the_sites():
    assert tuple(code for code, _name in settings.LANGUAGES) == TEXT_LANGUAGES


def test_a_plain_string_and_texts_by_language_are_both_accepted():
    graph, spec = filters()
    plain = english_only(spec)
    assert validate_upload(graph, plain).spec.inputs[0].label == "Image"
    spec["inputs"][1]["label"] = {"ru": "Радиус размытия"}  # one language is enough
    validated = validate_upload(graph, spec).spec
    assert validated.name == {"en": "Blur, sharpen, invert", "ru": "Размытие, резкость, негатив"}
    assert validated.inputs[1].label == {"ru": "Радиус размытия"}


@pytest.mark.parametrize(
    "where,text,message",
    [
        (("inputs", 1, "label"), {"de": "Unschärfe"}, "unknown language 'de'; use one of: en, ru"),
        (("inputs", 1, "label"), {}, "texts by language must give at least one of: en, ru"),
        (("inputs", 1, "label"), {"en": "Blur", "ru": ""}, "the 'ru' text must not be empty"),
        (("inputs", 1, "help"), {"en": "x" * 2001}, "the 'en' text must be at most 2000 characters"),
        (("inputs", 1, "label"), {"en": 5}, "the 'en' text must be a string"),
        (("inputs", 1, "label"), ["Blur"], "must be a string or texts by language"),
        (("name",), {"EN": "Filters"}, "unknown language 'EN'"),
        (("description",), {"fr": "Filtres"}, "unknown language 'fr'"),
    ],
)
def test_bad_texts_are_refused_naming_the_field(where, text, message):
    graph, spec = filters()
    target = spec
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = text
    [error] = refusals(graph, spec)
    path = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(where))
    assert f"spec: {path}" in error and message in error, error
    if where[0] == "inputs":
        assert "field 'blur_radius'" in error


def test_texts_by_language_need_spec_1_2():
    graph, spec = filters()
    spec["spec_version"] = "1.1"
    errors = refusals(graph, spec)
    assert any('name: texts by language need spec_version "1.2"' in e for e in errors)
    assert any('inputs[1].label: texts by language need spec_version "1.2"' in e for e in errors)
    # …while a 1.1 spec with plain strings stays valid.
    plain = english_only(spec)
    plain["spec_version"] = "1.1"
    assert validate_upload(graph, plain).spec.spec_version == "1.1"


def test_choice_labels_must_name_choices():
    graph, spec = load_example("scale-crop")
    fill = next(f for f in spec["inputs"] if f["id"] == "fill")
    fill["choice_labels"]["cover"] = {"en": "Cover"}
    [error] = refusals(graph, spec)
    assert "field 'fill'" in error and "choice_labels names 'cover', which is not one of the choices" in error


def test_resolution_falls_back_to_english_then_to_any_language():
    assert text_in("Seed", "ru") == "Seed"
    assert text_in({"en": "Seed", "ru": "Сид"}, "ru") == "Сид"
    assert text_in({"en": "Seed", "ru": "Сид"}, "ru-RU") == "Сид"
    assert text_in({"en": "Seed", "ru": "Сид"}, "de") == "Seed"
    assert text_in({"ru": "Сид"}, "en") == "Сид"
    assert category_name("txt2img", "ru") == "Картинка по тексту"
    assert category_name("txt2img", "en") == "Text to image"
    assert category_name("portraits", "ru") == "portraits"
    assert category_name({"en": "Portraits", "ru": "Портреты"}, "ru") == "Портреты"


def test_ui_schema_resolves_every_text_for_a_language():
    _graph, spec = load_example("scale-crop")
    spec["inputs"][1]["placeholder"] = {"en": "pixels", "ru": "пиксели"}
    spec["inputs"][1]["type"] = "text"
    for key in ("min", "max", "step", "default", "widget"):
        spec["inputs"][1].pop(key, None)
    russian = ui_schema(spec, language="ru")
    english = ui_schema(spec, language="en")
    assert (russian["name"], english["name"]) == ("Обрезка и масштаб", "Crop and resize")
    assert russian["description"].startswith("Вырезает часть картинки")
    assert (russian["category"], russian["category_name"]) == ("tools", "Инструменты")
    assert english["category_name"] == "Tools"
    fields = {f["id"]: f for f in russian["fields"]}
    assert fields["image"]["label"] == "Картинка" and fields["image"]["help"].startswith("Картинка для обрезки")
    assert fields["crop_x"]["placeholder"] == "пиксели"
    assert fields["fill"]["choices"] == ["disabled", "center"]  # the values never change
    assert fields["fill"]["options"] == [
        {"value": "disabled", "label": "Растянуть"},
        {"value": "center", "label": "Обрезать по центру"},
    ]
    assert {f["id"]: f for f in english["fields"]}["fill"]["options"][1]["label"] == "Crop the centre"
    # a choice without a label shows its value
    sampler = {f["id"]: f for f in ui_schema(load_example("sd15-txt2img")[1], language="ru")["fields"]}["sampler"]
    assert sampler["options"][0] == {"value": "euler", "label": "euler"}


def test_the_json_schema_describes_texts_by_language():
    schema = spec_json_schema()
    label = schema["$defs"]["TextField"]["properties"]["label"]
    by_language = next(option for option in label["anyOf"] if option.get("type") == "object")
    assert by_language["propertyNames"] == {"enum": ["en", "ru"]} and by_language["minProperties"] == 1
    assert "choice_labels" in schema["$defs"]["ChoiceField"]["properties"]
    assert schema["properties"]["spec_version"]["enum"] == ["1.0", "1.1", "1.2"]


# --- the bundled workflows -------------------------------------------------------------------


@pytest.mark.parametrize("folder", example_dirs(), ids=lambda p: p.name)
def test_every_bundled_workflow_speaks_russian(folder):
    """Name, description, every label and help text, and every choice label in English and Russian."""
    spec = WorkflowSpec.model_validate(json.loads((folder / "spec.json").read_text(encoding="utf-8")))
    assert spec.spec_version == "1.2"
    for path, text in spec_texts(spec):
        if path == "category" or path.endswith(".placeholder") or text == "":
            continue  # categories are keys (KNOWN_CATEGORIES); prompt examples stay English
        assert isinstance(text, dict) and text.get("en") and text.get("ru"), f"{folder.name}: {path} lacks a language"
        assert text["ru"] != text["en"] or len(text["en"]) <= 8, f"{folder.name}: {path} is not translated"
    assert spec.category in KNOWN_CATEGORIES, f"{folder.name}: category {spec.category!r} has no Russian name"


# --- the API in the request's language -------------------------------------------------------


@pytest.fixture
def bundled(db):
    upload_example("scale-crop")
    upload_example("sd15-txt2img")


@pytest.mark.django_db
def test_the_catalogue_api_answers_in_the_requests_language(alice_api, bundled):
    russian = alice_api.client.get("/api/workflows", **alice_api._headers({"HTTP_ACCEPT_LANGUAGE": "ru"})).json()
    english = alice_api.client.get("/api/workflows", **alice_api._headers({"HTTP_ACCEPT_LANGUAGE": "en"})).json()
    by_key = {group["category"]: group for group in russian}
    assert by_key["tools"]["category_name"] == "Инструменты"
    assert by_key["txt2img"]["category_name"] == "Картинка по тексту"
    card = by_key["tools"]["workflows"][0]
    assert (card["name"], card["category"], card["category_name"]) == ("Обрезка и масштаб", "tools", "Инструменты")
    assert card["description"].startswith("Вырезает часть картинки")
    assert {g["category"]: g for g in english}["tools"]["workflows"][0]["name"] == "Crop and resize"


@pytest.mark.django_db
def test_one_workflow_answers_in_the_requests_language(alice_api, bundled):
    def get(**headers):
        response = alice_api.client.get("/api/workflows/scale-crop", **alice_api._headers(headers))
        assert response.status_code == 200
        return response.json()

    russian = get(HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    assert russian["name"] == russian["ui_schema"]["name"] == "Обрезка и масштаб"
    labels = {f["id"]: f["label"] for f in russian["ui_schema"]["fields"]}
    assert labels["crop_width"] == "Ширина вырезки"
    fill = next(f for f in russian["ui_schema"]["fields"] if f["id"] == "fill")
    assert [o["label"] for o in fill["options"]] == ["Растянуть", "Обрезать по центру"]
    # The language chosen on the site (its cookie) wins over the browser's header, as on pages.
    alice_api.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    assert get(HTTP_ACCEPT_LANGUAGE="en")["ui_schema"]["fields"][0]["label"] == "Картинка"
    del alice_api.client.cookies[settings.LANGUAGE_COOKIE_NAME]
    english = get(HTTP_ACCEPT_LANGUAGE="en")
    assert english["name"] == "Crop and resize" and english["ui_schema"]["fields"][0]["label"] == "Image"
    assert get(HTTP_ACCEPT_LANGUAGE="de")["name"] == "Crop and resize"  # no German: English


@pytest.mark.django_db
def test_the_database_keeps_the_english_texts(bundled):
    from workflows.models import Workflow

    stored = Workflow.objects.get(slug="scale-crop")
    assert (stored.name, stored.category) == ("Crop and resize", "tools")
    assert stored.description.startswith("Cut out part of a picture")


@pytest.mark.django_db
def test_an_upload_with_a_bad_language_is_a_400_naming_the_field(admin_api):
    spec = json.loads((EXAMPLES / "image-filters" / "spec.json").read_text())
    spec = clone(spec)
    spec["inputs"][2]["label"] = {"en": "Blur strength", "de": "Unschärfe"}
    response = admin_api.multipart(
        "/api/admin/workflows",
        {
            "workflow": SimpleUploadedFile(
                "workflow.json", (EXAMPLES / "image-filters" / "workflow.json").read_bytes()
            ),
            "spec": SimpleUploadedFile("spec.json", json.dumps(spec).encode()),
        },
    )
    assert response.status_code == 400
    detail = json.dumps(response.json(), ensure_ascii=False)
    assert "inputs[2].label" in detail and "unknown language 'de'" in detail, detail
    with pytest.raises(ValidationError):
        WorkflowSpec.model_validate(spec)


@pytest.mark.django_db
def test_jobs_show_the_workflow_name_and_labels_in_the_readers_language(alice, alice_api, alice_client_ru):
    from tests.factories import make_job

    workflow = upload_example("scale-crop")
    job = make_job(alice, workflow, inputs={"width": 640, "method": "lanczos"})
    ru = {"HTTP_ACCEPT_LANGUAGE": "ru"}
    assert alice_api.client.get(f"/api/jobs/{job.id}", **alice_api._headers(ru)).json()["workflow_name"] == (
        "Обрезка и масштаб"
    )
    listed = alice_api.client.get("/api/jobs", **alice_api._headers(ru)).json()
    assert json.dumps(listed, ensure_ascii=False).count("Обрезка и масштаб") == 1
    assert alice_api.get(f"/api/jobs/{job.id}").json()["workflow_name"] == "Crop and resize"
    page = alice_client_ru.get(f"/jobs/{job.id}/").content.decode()
    assert "Обрезка и масштаб" in page and "Новая ширина" in page  # the input's label
    assert "Ланцош" in page and "lanczos" not in page  # a choice shows its label, not its value


@pytest.fixture
def alice_client_ru(alice):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    return client


@pytest.mark.django_db
def test_readers_get_copies_so_the_kept_workflow_stays_in_english(alice_api, bundled):
    """One kept version serves every language: a Russian reader's copy never changes it."""
    from workflows.display import shown_workflow
    from workflows.services import get_active_workflow

    kept = get_active_workflow("scale-crop")
    assert shown_workflow(kept, "ru").name == "Обрезка и масштаб"
    assert kept.name == "Crop and resize" and not hasattr(kept, "category_name")
    ru = {"HTTP_ACCEPT_LANGUAGE": "ru"}
    assert alice_api.client.get("/api/workflows/scale-crop", **alice_api._headers(ru)).json()["name"] == (
        "Обрезка и масштаб"
    )
    assert alice_api.get("/api/workflows/scale-crop").json()["name"] == "Crop and resize"
    assert get_active_workflow("scale-crop").name == "Crop and resize"


def test_a_help_left_empty_in_one_language_stays_empty():
    assert text_in({"en": "", "ru": "Подсказка"}, "en") == ""
    assert text_in({"en": "", "ru": "Подсказка"}, "ru") == "Подсказка"


@pytest.mark.django_db
def test_the_catalogue_is_sorted_as_the_reader_reads_it(alice_api, bundled):
    upload_example("image-filters")
    upload_example("model-upscale")

    def listed(language):
        groups = alice_api.client.get("/api/workflows", **alice_api._headers({"HTTP_ACCEPT_LANGUAGE": language})).json()
        return [(g["category_name"], [w["name"] for w in g["workflows"]]) for g in groups]

    assert listed("en") == [
        ("Text to image", ["Text to image (SD 1.5)"]),
        ("Tools", ["Blur, sharpen, invert", "Crop and resize"]),
        ("Upscaling", ["Upscale with an AI model"]),
    ]
    assert listed("ru") == [
        ("Инструменты", ["Обрезка и масштаб", "Размытие, резкость, негатив"]),
        ("Картинка по тексту", ["Картинка по тексту (SD 1.5)"]),
        ("Увеличение", ["Увеличение нейросетью"]),
    ]


@pytest.mark.django_db
def test_the_migration_fills_the_names_of_versions_stored_before():
    import importlib

    from django.apps import apps as django_apps

    from workflows.models import Workflow

    stored = upload_example("scale-crop")
    Workflow.objects.filter(pk=stored.pk).update(names={})
    # Found by its name, not its number (numbers change when branches merge).
    [path] = (Path(__file__).resolve().parents[2] / "workflows/migrations").glob("*_workflow_names_by_language.py")
    migration = importlib.import_module(f"workflows.migrations.{path.stem}")
    migration.names_from_specs(django_apps, None)
    stored.refresh_from_db()
    assert stored.names == {"en": "Crop and resize", "ru": "Обрезка и масштаб"}
    assert stored.name_in("ru") == "Обрезка и масштаб" and stored.name_in("de") == "Crop and resize"
