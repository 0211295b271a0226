/*
 * mask-canvas.js: paint an inpainting mask over an image, no dependencies, no build step.
 *
 * Progressive enhancement of a form. Markup (see docs/masks.md):
 *
 *   <input type="file" id="id_image" name="image" accept="image/*">
 *   <input type="file" id="id_mask" name="mask" accept="image/*">
 *   <div data-mask-canvas data-image-input="id_image" data-mask-input="id_mask"
 *        data-image-url="(optional: an already uploaded image)"
 *        data-mask-upload-input="(optional: id of a separate 'upload a mask instead' file input)"
 *        data-mask-url="(optional: a mask uploaded before, shown on the picture to go on from)"
 *        data-mask-keep="(with it: id of the hidden input that sends that mask's upload id)"
 *        data-label-brush="Brush" …></div>
 *
 * The mask canvas has the image's FULL natural resolution (the display is only scaled with
 * CSS), so the exported mask has the image's size. White = painted = the area to change.
 * The mask is exported as a black/white PNG into the mask <input type=file> (DataTransfer)
 * after every change and again on submit, so plain multipart posts and htmx both carry it;
 * for an <input type=hidden> the value becomes a data: URL. Nothing painted = input emptied.
 *
 * Works as a classic <script> or <script type="module">. Exposes window.MaskCanvas:
 *   init(root), initAll(scope = document), getMaskDataURL(root) -> "data:image/png;…" | null
 */
(function () {
  "use strict";

  const LABELS = {
    brush: "Brush", eraser: "Eraser", size: "Brush size", clear: "Clear", invert: "Invert",
    undo: "Undo", fit: "Zoom to fit", uploadInstead: "Upload a mask file instead",
    hint: "Paint the area to change. Keys: b brush, e eraser, [ ] size, Ctrl+Z undo.",
    noImage: "Choose an image first.",
  };
  const UNDO_LIMIT = 20; // steps, and at most UNDO_BYTES of ImageData in total
  const UNDO_BYTES = 200 * 1024 * 1024;
  const PAINT = "rgb(255, 0, 0)"; // shown semi-transparent through CSS opacity
  const states = new WeakMap();

  function label(root, key) {
    const attr = "label" + key.charAt(0).toUpperCase() + key.slice(1); // data-label-upload-instead → labelUploadInstead
    return root.dataset[attr] || LABELS[key];
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  }

  function button(root, key, shortcut) {
    const text = label(root, key);
    const title = shortcut ? text + " (" + shortcut + ")" : text;
    return el("button", { type: "button", "aria-label": text, title: title, "data-action": key }, text);
  }

  /* ---------------------------------------------------------------- construction */

  function init(root) {
    if (!root || states.has(root)) return states.get(root);
    const byId = (id) => (id ? document.getElementById(id) : null);
    const s = {
      root: root,
      imageInput: byId(root.dataset.imageInput),
      maskInput: byId(root.dataset.maskInput),
      uploadInput: byId(root.dataset.maskUploadInput),
      keepInput: byId(root.dataset.maskKeep), keptShown: false,
      tool: "brush", size: 40, undo: [], painted: false, drawing: null,
      fit: true, disabled: false, exportTimer: 0,
    };
    states.set(root, s);
    root.classList.add("mask-canvas");
    root.tabIndex = root.tabIndex >= 0 ? root.tabIndex : 0;

    // Toolbar
    const bar = el("div", { class: "mask-canvas__toolbar", role: "toolbar", "aria-label": label(root, "hint") });
    s.brushBtn = button(root, "brush", "B");
    s.eraserBtn = button(root, "eraser", "E");
    s.sizeInput = el("input", { type: "range", min: "2", max: "200", step: "1", value: String(s.size),
      "aria-label": label(root, "size"), title: label(root, "size") + " ([ ])" });
    const sizeLabel = el("label", { class: "mask-canvas__size" }, label(root, "size") + " ");
    sizeLabel.appendChild(s.sizeInput);
    s.undoBtn = button(root, "undo", "Ctrl+Z");
    s.clearBtn = button(root, "clear");
    s.invertBtn = button(root, "invert");
    s.fitBtn = button(root, "fit");
    s.fitBtn.setAttribute("aria-pressed", "true");
    bar.append(s.brushBtn, s.eraserBtn, sizeLabel, s.undoBtn, s.clearBtn, s.invertBtn, s.fitBtn);

    // "Upload a mask instead": a separate file input if given, else a checkbox that reveals
    // the mask file input itself for a manual choice.
    if (!s.uploadInput) {
      s.instead = el("input", { type: "checkbox" });
      const l = el("label", { class: "mask-canvas__instead" });
      l.append(s.instead, document.createTextNode(" " + label(root, "uploadInstead")));
      bar.appendChild(l);
    }

    // Stage: the <img> and, over it, the mask canvas at natural resolution.
    s.stage = el("div", { class: "mask-canvas__stage" }); // scrolls when not fitted
    s.layer = el("div", { class: "mask-canvas__layer" }); // image size on screen
    s.img = el("img", { class: "mask-canvas__image", alt: "", draggable: "false" });
    s.canvas = el("canvas", { class: "mask-canvas__mask", "aria-label": label(root, "hint"), role: "img" });
    s.ctx = s.canvas.getContext("2d", { willReadFrequently: true });
    s.cursor = el("div", { class: "mask-canvas__cursor", "aria-hidden": "true" });
    s.layer.append(s.img, s.canvas, s.cursor);
    s.stage.appendChild(s.layer);
    s.hint = el("p", { class: "mask-canvas__hint" }, label(root, "noImage"));
    root.append(bar, s.stage, s.hint);

    wire(s);
    if (s.maskInput && s.maskInput.type === "file" && !s.uploadInput) s.maskInput.hidden = true;
    if (s.imageInput && s.imageInput.files && s.imageInput.files[0]) loadFile(s, s.imageInput.files[0]);
    else if (root.dataset.imageUrl) loadImage(s, root.dataset.imageUrl);
    updateUI(s);
    return s;
  }

  function wire(s) {
    s.brushBtn.addEventListener("click", () => setTool(s, "brush"));
    s.eraserBtn.addEventListener("click", () => setTool(s, "eraser"));
    s.sizeInput.addEventListener("input", () => { s.size = +s.sizeInput.value; });
    s.undoBtn.addEventListener("click", () => undo(s));
    s.clearBtn.addEventListener("click", () => { pushUndo(s); s.ctx.clearRect(0, 0, s.canvas.width, s.canvas.height); changed(s); });
    s.invertBtn.addEventListener("click", () => invert(s));
    s.fitBtn.addEventListener("click", () => { s.fit = !s.fit; updateUI(s); });
    if (s.imageInput) s.imageInput.addEventListener("change", () => {
      const f = s.imageInput.files && s.imageInput.files[0];
      if (f) {
        forgetKeptMask(s); // it was painted on the other picture
        loadFile(s, f);
      }
    });
    if (s.instead) s.instead.addEventListener("change", () => {
      s.disabled = s.instead.checked;
      if (s.maskInput) { s.maskInput.hidden = !s.disabled; clearInput(s.maskInput); }
      if (!s.disabled) exportNow(s);
      updateUI(s);
    });
    if (s.uploadInput) s.uploadInput.addEventListener("change", () => {
      s.disabled = !!(s.uploadInput.files && s.uploadInput.files.length);
      if (s.disabled) { if (s.maskInput && s.maskInput !== s.uploadInput) clearInput(s.maskInput); }
      else exportNow(s);
      updateUI(s);
    });

    const c = s.canvas;
    c.addEventListener("pointerdown", (e) => strokeStart(s, e));
    c.addEventListener("pointermove", (e) => { moveCursor(s, e); strokeMove(s, e); });
    c.addEventListener("pointerup", (e) => strokeEnd(s, e));
    c.addEventListener("pointercancel", (e) => strokeEnd(s, e));
    c.addEventListener("pointerleave", () => { s.cursor.style.display = "none"; });
    s.root.addEventListener("keydown", (e) => onKey(s, e));

    const form = s.root.closest("form");
    // Capture phase: runs before htmx or other submit handlers serialize the form.
    if (form) form.addEventListener("submit", () => exportNow(s), true);
  }

  /* ---------------------------------------------------------------- image loading */

  function loadFile(s, file) {
    if (s.objectURL) URL.revokeObjectURL(s.objectURL);
    s.objectURL = URL.createObjectURL(file);
    loadImage(s, s.objectURL);
  }

  function loadImage(s, url) {
    s.img.onload = () => {
      // naturalWidth/Height already include the EXIF orientation, as the server's does.
      s.canvas.width = s.img.naturalWidth;
      s.canvas.height = s.img.naturalHeight;
      s.undo = [];
      s.painted = false;
      s.ready = true;
      if (s.maskInput && !s.disabled) clearInput(s.maskInput);
      updateUI(s);
      if (!s.keptShown && s.keepInput && s.keepInput.value && s.root.dataset.maskUrl) showKeptMask(s);
    };
    s.img.onerror = () => { s.ready = false; updateUI(s); };
    s.img.src = url;
  }

  /* ---------------------------------------------------------------- painting */

  function toCanvas(s, e) {
    const r = s.canvas.getBoundingClientRect();
    const k = s.canvas.width / (r.width || 1);
    return { x: (e.clientX - r.left) * k, y: (e.clientY - r.top) * k, k: k };
  }

  function lineWidth(s, e, k) {
    const pressure = e.pointerType === "pen" && e.pressure > 0 ? 0.25 + e.pressure * 0.75 : 1;
    return Math.max(1, s.size * k * pressure); // brush size is in screen pixels
  }

  function strokeStart(s, e) {
    if (!s.ready || s.disabled || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    s.root.focus({ preventScroll: true }); // so the keyboard shortcuts work after a click
    s.canvas.setPointerCapture(e.pointerId);
    pushUndo(s);
    const p = toCanvas(s, e);
    s.drawing = { id: e.pointerId, x: p.x, y: p.y };
    const ctx = s.ctx;
    ctx.globalCompositeOperation = s.tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = PAINT;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(p.x, p.y, lineWidth(s, e, p.k) / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  function strokeMove(s, e) {
    if (!s.drawing || e.pointerId !== s.drawing.id) return;
    e.preventDefault();
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) {
      const p = toCanvas(s, ev);
      s.ctx.lineWidth = lineWidth(s, ev, p.k);
      s.ctx.beginPath();
      s.ctx.moveTo(s.drawing.x, s.drawing.y);
      s.ctx.lineTo(p.x, p.y);
      s.ctx.stroke();
      s.drawing.x = p.x;
      s.drawing.y = p.y;
    }
  }

  function strokeEnd(s, e) {
    if (!s.drawing || e.pointerId !== s.drawing.id) return;
    s.drawing = null;
    s.ctx.globalCompositeOperation = "source-over";
    changed(s);
  }

  function moveCursor(s, e) {
    if (!s.ready || s.disabled || e.pointerType === "touch") return;
    const r = s.layer.getBoundingClientRect();
    const d = s.size;
    Object.assign(s.cursor.style, {
      display: "block", width: d + "px", height: d + "px",
      left: e.clientX - r.left - d / 2 + "px", top: e.clientY - r.top - d / 2 + "px",
    });
  }

  function setTool(s, tool) { s.tool = tool; updateUI(s); }

  function setSize(s, size) {
    s.size = Math.min(200, Math.max(2, Math.round(size)));
    s.sizeInput.value = String(s.size);
  }

  function pushUndo(s) {
    if (!s.ready) return;
    const w = s.canvas.width, h = s.canvas.height;
    const limit = Math.max(1, Math.min(UNDO_LIMIT, Math.floor(UNDO_BYTES / (w * h * 4))));
    s.undo.push(s.ctx.getImageData(0, 0, w, h));
    while (s.undo.length > limit) s.undo.shift();
  }

  function undo(s) {
    const prev = s.undo.pop();
    if (!prev || s.disabled) return;
    s.ctx.putImageData(prev, 0, 0);
    changed(s);
  }

  function invert(s) {
    if (!s.ready || s.disabled) return;
    pushUndo(s);
    const data = s.ctx.getImageData(0, 0, s.canvas.width, s.canvas.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      px[i] = 255; px[i + 1] = 0; px[i + 2] = 0; px[i + 3] = 255 - px[i + 3];
    }
    s.ctx.putImageData(data, 0, 0);
    changed(s);
  }

  function onKey(s, e) {
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "range" && t.type !== "checkbox")) return;
    if (t && (t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z" && !e.shiftKey) { undo(s); e.preventDefault(); }
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    else if (key === "b") { setTool(s, "brush"); e.preventDefault(); }
    else if (key === "e") { setTool(s, "eraser"); e.preventDefault(); }
    else if (key === "[") { setSize(s, s.size / 1.25); e.preventDefault(); }
    else if (key === "]") { setSize(s, s.size * 1.25); e.preventDefault(); }
  }

  /* ---------------------------------------------------------------- a mask from before */

  // The mask a form carries from before (run again, or a form shown again) is drawn on the
  // canvas, read as the server reads a mask (jobs/imaging.py _mask_gray): a varying alpha, or a
  // uniform one under flat colour, is the mask; otherwise the luminance. Until the canvas
  // changes the form sends that mask's upload id, not a new file.
  function showKeptMask(s) {
    s.keptShown = true;
    const m = new Image();
    m.onload = () => {
      const w = s.canvas.width, h = s.canvas.height;
      const tmp = document.createElement("canvas");
      tmp.width = w; tmp.height = h;
      const tctx = tmp.getContext("2d");
      tctx.drawImage(m, 0, 0, w, h);
      const src = tctx.getImageData(0, 0, w, h).data;
      let aMin = 255, aMax = 0, flat = true;
      for (let i = 0; i < src.length; i += 4) {
        aMin = Math.min(aMin, src[i + 3]); aMax = Math.max(aMax, src[i + 3]);
        if (flat && (src[i] !== src[0] || src[i + 1] !== src[1] || src[i + 2] !== src[2])) flat = false;
      }
      const byAlpha = aMin !== aMax || (aMax < 255 && flat);
      const out = s.ctx.createImageData(w, h);
      const px = out.data;
      for (let i = 0; i < px.length; i += 4) {
        const v = byAlpha ? src[i + 3] : 0.299 * src[i] + 0.587 * src[i + 1] + 0.114 * src[i + 2];
        if (v >= 128) { px[i] = 255; px[i + 3] = 255; } // PAINT, opaque
      }
      s.ctx.putImageData(out, 0, 0);
      s.root.classList.add("mask-canvas--kept");
      updateUI(s);
    };
    m.src = s.root.dataset.maskUrl;
  }

  function forgetKeptMask(s) {
    s.keptShown = true;
    if (s.keepInput) s.keepInput.value = "";
    s.root.classList.remove("mask-canvas--kept");
  }

  /* ---------------------------------------------------------------- export */

  function changed(s) {
    if (s.keepInput && s.keepInput.value) forgetKeptMask(s); // the canvas is what counts now
    clearTimeout(s.exportTimer);
    s.exportTimer = setTimeout(() => exportNow(s), 250);
    updateUI(s);
  }

  /** Black/white PNG data URL of the mask at full resolution, or null when nothing is painted. */
  function maskDataURL(s) {
    if (!s.ready || !s.canvas.width) return null;
    const w = s.canvas.width, h = s.canvas.height;
    const src = s.ctx.getImageData(0, 0, w, h).data;
    const out = document.createElement("canvas");
    out.width = w; out.height = h;
    const octx = out.getContext("2d");
    const img = octx.createImageData(w, h);
    const px = img.data;
    let any = false;
    for (let i = 0; i < px.length; i += 4) {
      const v = src[i + 3] >= 128 ? 255 : 0; // painted (opaque enough) = white
      if (v) any = true;
      px[i] = px[i + 1] = px[i + 2] = v;
      px[i + 3] = 255;
    }
    s.painted = any;
    if (!any) return null;
    octx.putImageData(img, 0, 0);
    return out.toDataURL("image/png");
  }

  function dataURLToFile(url, name) {
    const [head, b64] = url.split(",");
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new File([bytes], name, { type: head.slice(5).split(";")[0] });
  }

  function clearInput(input) {
    if (input.type === "file") {
      try { input.files = new DataTransfer().files; } catch (_) { input.value = ""; }
    } else input.value = "";
  }

  function exportNow(s) {
    clearTimeout(s.exportTimer);
    const input = s.maskInput;
    if (!input || s.disabled || !s.ready) return;
    if (s.keepInput && s.keepInput.value) return; // the mask from before, unchanged: sent by its id
    const url = maskDataURL(s);
    if (!url) { clearInput(input); return; }
    if (input.type === "file" && typeof DataTransfer === "function") {
      const dt = new DataTransfer();
      dt.items.add(dataURLToFile(url, "mask.png"));
      input.files = dt.files;
    } else {
      input.value = url;
    }
  }

  /* ---------------------------------------------------------------- view */

  function updateUI(s) {
    s.root.classList.toggle("mask-canvas--ready", !!s.ready);
    s.root.classList.toggle("mask-canvas--disabled", s.disabled);
    s.root.classList.toggle("mask-canvas--fit", s.fit);
    s.stage.hidden = !s.ready;
    s.hint.textContent = s.ready ? label(s.root, "hint") : label(s.root, "noImage");
    s.brushBtn.setAttribute("aria-pressed", String(s.tool === "brush"));
    s.eraserBtn.setAttribute("aria-pressed", String(s.tool === "eraser"));
    s.fitBtn.setAttribute("aria-pressed", String(s.fit));
    const off = !s.ready || s.disabled;
    for (const b of [s.brushBtn, s.eraserBtn, s.clearBtn, s.invertBtn, s.fitBtn, s.sizeInput]) b.disabled = off;
    s.undoBtn.disabled = off || !s.undo.length;
    // Fit: the layer takes the container width. Otherwise 1:1 pixels and the stage scrolls.
    s.layer.style.width = !s.fit && s.ready ? s.img.naturalWidth + "px" : "";
  }

  /* ---------------------------------------------------------------- API */

  function initAll(scope) {
    (scope || document).querySelectorAll("[data-mask-canvas]").forEach(init);
  }

  function getMaskDataURL(root) {
    const s = states.get(root);
    return s ? maskDataURL(s) : null;
  }

  window.MaskCanvas = { init: init, initAll: initAll, getMaskDataURL: getMaskDataURL };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => initAll());
  else initAll();
  // htmx swaps in new content: enhance it too.
  document.addEventListener("htmx:load", (e) => initAll(e.target));
})();
