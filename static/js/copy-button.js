/*
 * copy-button.js: <button data-copy-target="ID" data-copied-label="Copied"> copies the text of
 * the element #ID to the clipboard (a seed on the job page) and says so in the next
 * [data-copy-status] (role=status, so screen readers hear it too).
 */
(function () {
  "use strict";

  function fallbackCopy(value) {
    // Without the Clipboard API (an insecure context): a selected, off-screen textarea.
    const area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.className = "copy-scratch";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (err) {
      ok = false;
    }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest("button[data-copy-target]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    const value = source.textContent.trim();
    const status = button.parentNode.querySelector("[data-copy-status]");
    const copied = navigator.clipboard && window.isSecureContext ? navigator.clipboard.writeText(value) : fallbackCopy(value);
    copied.then(
      function () {
        if (status) status.textContent = button.dataset.copiedLabel || "";
        button.dataset.copied = "";
      },
      function () {
        // Copy refused: select the value so that the user can copy it by hand.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    );
  });
})();
