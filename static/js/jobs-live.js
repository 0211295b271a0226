/*
 * jobs-live.js: apply live job events from /ws/jobs/ to the page. No dependencies beyond htmx.
 *
 * The page holds <div hx-ext="ws" ws-connect="/ws/jobs/" data-live-jobs>, so htmx's ws extension
 * owns the socket (and its reconnects). Its messages are JSON, not HTML: we take them in
 * htmx:wsBeforeMessage and stop htmx from swapping them. Each job on the page is an element
 * [data-job-id] with children [data-field=status|progress-box|percent|progress-text|position|waiting|node]
 * and a <progress data-progress>. When a job's status changes, its element is fetched again
 * from its data-refresh-url (outputs, actions and error text come with it).
 *
 * When the socket cannot connect (or closes), window.comfyPortalPoll becomes true, which turns
 * on the elements' hx-trigger="every 2s [window.comfyPortalPoll === true]" polling.
 */
(function () {
  "use strict";

  const PING_MS = 20000;
  const CONNECT_TIMEOUT_MS = 4000;
  let pingTimer = 0;
  let opened = false;

  // Translated labels live in <template> elements rendered by the server (their content is
  // a DocumentFragment, not part of the document).
  function text(templateId, attr, key) {
    const tpl = document.getElementById(templateId);
    const el = tpl && tpl.content.querySelector("[" + attr + '="' + key + '"]');
    return el ? el.textContent.trim() : "";
  }

  function statusLabel(status) {
    return text("job-status-labels", "data-status-label", status) || status;
  }

  function fill(template, name, value) {
    return template.replace("%(" + name + ")s", value);
  }

  function setPoll(on) {
    window.comfyPortalPoll = on;
    document.documentElement.toggleAttribute("data-live-polling", on);
  }

  function refresh(el) {
    const url = el.dataset.refreshUrl;
    if (url && window.htmx) window.htmx.ajax("GET", url, { target: el, swap: "outerHTML" });
  }

  function applyJob(job) {
    const rows = document.querySelectorAll('[data-job-id="' + CSS.escape(job.id) + '"]');
    if (!rows.length) {
      // A job started elsewhere (another tab, the API): reload the first page of the list.
      const list = document.querySelector("#job-list[data-live-insert]");
      if (list && job.status && window.htmx) {
        window.htmx.ajax("GET", list.getAttribute("hx-get"), { target: list, swap: "outerHTML" });
      }
      return;
    }
    rows.forEach(function (row) {
      if (job.status && job.status !== row.dataset.status) {
        refresh(row); // new badge, actions, outputs, error text
        return;
      }
      const pct = Math.round((job.progress || 0) * 100);
      const bar = row.querySelector("progress[data-progress]");
      if (bar && typeof job.progress === "number") {
        bar.value = job.progress;
        bar.dataset.progress = String(job.progress);
        bar.setAttribute("aria-valuenow", String(pct));
        bar.textContent = pct + "%";
      }
      const field = (name) => row.querySelector('[data-field="' + name + '"]');
      if (field("percent") && typeof job.progress === "number") field("percent").textContent = pct + "%";
      if (field("progress-text") && job.progress_text !== undefined) field("progress-text").textContent = job.progress_text || "";
      const position = field("position");
      if (position && job.position !== undefined) {
        position.hidden = !(job.status === "QUEUED" && job.position);
        if (job.position) position.textContent = fill(text("job-live-labels", "data-live-label", "position"), "position", job.position);
      }
      const waiting = field("waiting");
      if (waiting && job.waiting_code !== undefined) {
        waiting.hidden = !(job.status === "QUEUED" && job.waiting_code);
        if (job.waiting_code) {
          const label = text("job-live-labels", "data-live-label", "waiting-" + job.waiting_code);
          waiting.textContent = fill(label, "names", (job.waiting_missing || []).join(", "));
        }
      }
      const node = field("node");
      if (node && job.node !== undefined) {
        node.hidden = !job.node;
        if (job.node) node.textContent = fill(text("job-live-labels", "data-live-label", "node"), "node", job.node);
      }
      const status = field("status");
      if (status && job.status) {
        status.textContent = statusLabel(job.status);
        status.dataset.status = job.status;
      }
    });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    let data;
    try {
      data = JSON.parse(e.detail.message);
    } catch (err) {
      return; // not JSON: let htmx swap it as HTML
    }
    e.preventDefault();
    if (data.type === "job" && data.job && data.job.id) applyJob(data.job);
    else if (data.type === "blocked") window.location.reload(); // the server logs the user out
  });

  document.addEventListener("htmx:wsOpen", function (e) {
    opened = true;
    setPoll(false);
    const socket = e.detail.socketWrapper;
    clearInterval(pingTimer);
    pingTimer = setInterval(function () { socket.send(JSON.stringify({ type: "ping" })); }, PING_MS);
  });

  function lost() {
    clearInterval(pingTimer);
    setPoll(true);
  }
  document.addEventListener("htmx:wsClose", lost);
  document.addEventListener("htmx:wsError", lost);

  setPoll(false);
  if (!("WebSocket" in window)) setPoll(true);
  else setTimeout(function () { if (!opened) setPoll(true); }, CONNECT_TIMEOUT_MS);
})();
