/*
 * portal.js: small progressive enhancements of the server-rendered pages. No dependencies.
 *
 *  - image upload preview:  <input type=file data-preview="img-id">
 *  - slider + number pair:  [data-slider] containing [data-slider-range] and [data-slider-number]
 *  - seed "random" toggle:  [data-seed] containing [data-seed-number] and [data-seed-random]
 *  - lightbox:              <a data-lightbox data-full=url data-download=url> opens <dialog id=lightbox>
 *  - confirm before submit: <form data-confirm="question">
 *  - focus the error summary of a form re-rendered by htmx; after a start, the control that had it
 *  - Ctrl+Enter (or Cmd+Enter) in the workflow form starts it
 *  - menus made of <details class="use-as-input">: a click elsewhere or Escape closes them
 * Everything is delegated on document, so it keeps working on content swapped in by htmx.
 */
(function () {
  "use strict";

  document.addEventListener("change", function (e) {
    const t = e.target;
    if (t.matches("input[type=file][data-preview]")) {
      const img = document.getElementById(t.dataset.preview);
      const file = t.files && t.files[0];
      if (img) {
        if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
        if (file) {
          img.dataset.objectUrl = URL.createObjectURL(file);
          img.src = img.dataset.objectUrl;
          img.hidden = false;
        } else {
          img.hidden = true;
        }
      }
    }
    if (t.matches("[data-seed-random]")) {
      const number = t.closest("[data-seed]").querySelector("[data-seed-number]");
      number.disabled = t.checked;
      if (!t.checked) number.focus();
    }
  });

  document.addEventListener("input", function (e) {
    const t = e.target;
    const box = t.closest && t.closest("[data-slider]");
    if (!box) return;
    const range = box.querySelector("[data-slider-range]");
    const number = box.querySelector("[data-slider-number]");
    if (t === range) number.value = range.value;
    else if (t === number && number.value !== "") range.value = number.value;
  });

  document.addEventListener("click", function (e) {
    const link = e.target.closest && e.target.closest("a[data-lightbox]");
    const dialog = document.getElementById("lightbox");
    if (!link || !dialog || typeof dialog.showModal !== "function") return;
    e.preventDefault();
    document.getElementById("lightbox-image").src = link.dataset.full;
    document.getElementById("lightbox-download").href = link.dataset.download || link.dataset.full;
    dialog.showModal();
  });

  function closeMenus(except) {
    document.querySelectorAll("details.use-as-input[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener("click", function (e) {
    closeMenus(e.target.closest && e.target.closest("details.use-as-input"));
  });

  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    const menu = e.target.closest && e.target.closest("details.use-as-input[open]");
    if (menu) { menu.open = false; menu.querySelector("summary").focus(); }
  });

  document.addEventListener("click", function (e) {
    // A click on the backdrop (outside the picture) closes the lightbox.
    if (e.target.id === "lightbox") e.target.close();
  });

  document.addEventListener("submit", function (e) {
    const form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  document.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey)) return;
    const form = e.target.closest && e.target.closest("#workflow-form");
    if (!form) return;
    e.preventDefault();
    form.requestSubmit(document.getElementById("workflow-submit"));
  });

  // The workflow form is swapped for its next state after each start: keep the user's place.
  let focusedInForm = "";
  document.addEventListener("htmx:beforeSwap", function (e) {
    const active = document.activeElement;
    const inForm = e.detail.target && e.detail.target.id === "workflow-form" && active && e.detail.target.contains(active);
    focusedInForm = inForm ? active.id : "";
  });

  document.addEventListener("htmx:afterSettle", function () {
    // A form re-rendered with errors: move focus to the summary so screen readers announce it.
    const errors = document.getElementById("form-errors");
    if (errors && !errors.dataset.focused) { errors.dataset.focused = "1"; errors.focus(); }
    else if (!errors && focusedInForm) {
      const again = document.getElementById(focusedInForm);
      if (again) again.focus();
    }
    focusedInForm = "";
  });
})();
