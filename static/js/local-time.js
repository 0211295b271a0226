/*
 * local-time.js: one date format on every page. The server renders <time datetime="ISO"
 * data-local-time> with Django's localized format in the server's time zone; this rewrites each
 * one with Intl.DateTimeFormat in the page's language (<html lang>) and the browser's time
 * zone, named in the element's title. Runs again after every HTMX swap.
 */
(function () {
  "use strict";

  let format = null;
  function formatter() {
    if (!format) {
      const lang = document.documentElement.lang || undefined;
      try {
        format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });
      } catch (err) {
        format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
      }
    }
    return format;
  }

  function localize(root) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.textContent = formatter().format(when);
      if (zone) el.title = zone;
      el.dataset.localized = "";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  document.addEventListener("htmx:afterSettle", function () { localize(document); });
})();
