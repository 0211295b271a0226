"""In chromium: a user who chose Russian sees the workflows' own texts in Russian (catalogue, form,
choice labels), and English again after switching back."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, publish, shot
from tests.factories import upload_example

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def switch_language(page, code: str) -> None:
    page.click("#user-menu summary")
    page.select_option("#language-select", code)
    with page.expect_navigation():
        page.click("#language-form button[type=submit]")
    assert page.get_attribute("html", "lang") == code


def test_workflow_texts_follow_the_users_language(stack_factory, user_factory, new_context):
    stack = stack_factory(nodes=0, workers=0)
    user_factory("olga")
    upload_example("scale-crop")
    upload_example("image-filters")

    page = new_context(stack.web_url, locale="en-US").new_page()  # the browser asks for English
    log_in(page, "olga")
    assert page.inner_text("#workflow-scale-crop h3") == "Crop and resize"
    switch_language(page, "ru")  # …and the user chooses Russian in the user menu

    # The catalogue: category heading, names and descriptions in Russian.
    tools = page.locator('section[data-category="tools"]')
    assert tools.locator("h2").inner_text() == "Инструменты"
    assert page.inner_text("#workflow-scale-crop h3") == "Обрезка и масштаб"
    assert "Вырезает часть картинки" in page.inner_text("#workflow-scale-crop")
    assert page.inner_text("#workflow-image-filters h3") == "Размытие, резкость, негатив"
    shot(page, "21-catalogue-workflow-texts-ru")

    # The form: title, labels, help and choice labels; the values sent stay the spec's.
    page.click("#workflow-scale-crop h3 a")
    page.wait_for_selector("#workflow-form")
    assert page.inner_text("main h1") == "Обрезка и масштаб"
    assert page.inner_text("label[for=id_crop_width]") == "Ширина вырезки"
    assert page.inner_text("#id_crop_width-help").startswith("Ширина сохраняемой части")
    assert page.inner_text("label[for=id_method]").startswith("Способ масштабирования")
    options = page.eval_on_selector_all("#id_fill option", "els => els.map(e => [e.value, e.textContent])")
    assert options == [["disabled", "Растянуть"], ["center", "Обрезать по центру"]]
    assert page.title().startswith("Обрезка и масштаб")
    publish(shot(page, "22-form-workflow-texts-ru"), "workflow-form-ru.png")

    # Back to English: the same form speaks English.
    switch_language(page, "en")
    assert page.inner_text("main h1") == "Crop and resize"
    assert page.inner_text("label[for=id_crop_width]") == "Crop width"
    options = page.eval_on_selector_all("#id_fill option", "els => els.map(e => e.textContent)")
    assert options == ["Stretch", "Crop the centre"]
