/*
 * media-preview.js: a video or sound chosen in a workflow form plays before it is uploaded.
 *
 *   <input type=file data-media-preview="player-id" data-max-seconds="60"
 *          data-label-duration="Length: %(seconds)s s" data-label-too-long="…%(max)s…"
 *          data-label-unplayable="…">
 *   <video|audio id="player-id">   <img id="{input id}-animation">   <p id="{input id}-facts">
 *
 * The browser reads the file locally (an object URL): its length is shown, and a clip longer
 * than the field allows is flagged at once. The server still decodes and checks every file.
 * An animated PNG or GIF is shown in an <img>, where it plays by itself.
 */
(function () {
  "use strict";

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function reset(player, picture) {
    [player, picture].forEach(function (el) {
      if (!el) return;
      if (el.dataset.objectUrl) URL.revokeObjectURL(el.dataset.objectUrl);
      delete el.dataset.objectUrl;
      el.hidden = true;
    });
    if (player) { player.removeAttribute("src"); player.removeAttribute("poster"); player.load(); }
    if (picture) picture.removeAttribute("src");
  }

  document.addEventListener("change", function (e) {
    const input = e.target;
    if (!input.matches || !input.matches("input[type=file][data-media-preview]")) return;
    const player = document.getElementById(input.dataset.mediaPreview);
    const picture = document.getElementById(input.id + "-animation");
    const facts = document.getElementById(input.id + "-facts");
    const file = input.files && input.files[0];
    reset(player, picture);
    input.setCustomValidity("");
    if (facts) facts.textContent = "";
    if (!file) return;
    const url = URL.createObjectURL(file);
    if (file.type.indexOf("image/") === 0 && picture) {
      picture.dataset.objectUrl = url;
      picture.src = url;
      picture.hidden = false;
      return;
    }
    if (!player) return;
    player.dataset.objectUrl = url;
    player.hidden = false;
    player.addEventListener("loadedmetadata", function () {
      if (!facts || !isFinite(player.duration)) return;
      const seconds = Math.round(player.duration * 10) / 10;
      let text = format(input.dataset.labelDuration || "%(seconds)s s", { seconds: seconds });
      const max = parseFloat(input.dataset.maxSeconds || "");
      if (max && player.duration > max + 0.01) {
        const message = format(input.dataset.labelTooLong || "", { max: max });
        text += " — " + message;
        input.setCustomValidity(message);
      }
      facts.textContent = text;
    }, { once: true });
    player.addEventListener("error", function () {
      if (facts) facts.textContent = input.dataset.labelUnplayable || "";
    }, { once: true });
    player.src = url;
  });
})();
