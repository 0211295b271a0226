/*
 * jobs-live.js: apply live job events from /ws/jobs/ to the page. No dependencies beyond htmx.
 *
 * The page holds <div data-live-jobs data-live-url="/ws/jobs/" data-live-cursor="N">: this
 * script opens the socket itself, resuming from the cursor the page was rendered at (so a
 * change between the page and the socket is not lost), keeps the cursor of the newest event,
 * and when the socket drops shows "Reconnecting…", reconnects with jittered exponential
 * backoff and resumes with ?since=<cursor>: the server sends every change it missed (the
 * protocol: docs/live-events.md). Each job on the page is an element [data-job-id] with
 * children [data-field=status|progress-box|percent|progress-text|position|waiting|node] and a
 * <progress data-progress>; [data-duration][data-live-since] count up each second. When a job's status changes, its element is fetched again from
 * its data-refresh-url (outputs, actions and error text come with it).
 *
 * A workflow's page (data-live-workflow="<slug>") reloads its list only for jobs of that workflow.
 *
 * When the socket stays away (or WebSocket is missing), window.comfyPortalPoll becomes true,
 * which turns on the elements' hx-trigger="every 2s [window.comfyPortalPoll === true]" polling.
 */
(function () {
  "use strict";

  const PING_MS = 20000;
  const CONNECT_TIMEOUT_MS = 4000;

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

  // --- durations and waiting reasons that change without an event ---------------------
  // A duration still growing ([data-duration][data-live-since], rendered by the server) counts
  // up each second in the words the server uses ("2 min 5 s"); the server's value is replaced
  // when the job's element is fetched again on its next status change.
  function durationText(seconds) {
    const h = Math.floor(seconds / 3600);
    const min = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const label = (key) => text("job-live-labels", "data-live-label", key);
    if (h) return fill(fill(label("duration-h"), "h", h), "min", min);
    if (min) return fill(fill(label("duration-min"), "min", min), "s", s);
    return fill(label("duration-s"), "s", s);
  }

  function tickDurations() {
    document.querySelectorAll("[data-duration][data-live-since]").forEach(function (el) {
      const since = Date.parse(el.dataset.liveSince);
      if (isNaN(since) || !text("job-live-labels", "data-live-label", "duration-s")) return;
      const row = el.closest("[data-job-row]");
      if (row && FINISHED.indexOf(row.dataset.status) !== -1) return; // ended: its refresh is on its way
      el.textContent = durationText(Math.max(0, Math.round((Date.now() - since) / 1000)));
    });
  }

  // Why a queued job waits depends on the GPU servers too (one goes offline, another comes
  // online), which sends no job event: queued jobs are read again every QUEUED_REFRESH_MS and
  // only their waiting reason and queue position are copied in, so that nothing the user is
  // on (a focused button) is replaced.
  const QUEUED_REFRESH_MS = window.comfyPortalQueuedRefreshMs || 15000; // tests shorten it
  const QUEUED_FIELDS = ["waiting", "position"];
  function refreshQueued() {
    if (document.hidden || window.comfyPortalPoll === true) return; // polling reads them already
    document.querySelectorAll('[data-job-row][data-status="QUEUED"][data-refresh-url]').forEach(function (row) {
      fetch(row.dataset.refreshUrl, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html || !row.isConnected || row.dataset.status !== "QUEUED") return;
          const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-job-row]");
          if (!fresh) return;
          if (fresh.dataset.status !== row.dataset.status) {
            refresh(row); // it moved on meanwhile: its event is on its way, but show it now
            return;
          }
          QUEUED_FIELDS.forEach(function (name) {
            const shown = row.querySelector('[data-field="' + name + '"]');
            const now = fresh.querySelector('[data-field="' + name + '"]');
            if (!shown || !now) return;
            shown.textContent = now.textContent;
            shown.hidden = now.hidden;
          });
        })
        .catch(function () { /* the next turn tries again */ });
    });
  }

  // --- the socket ---------------------------------------------------------------------
  const root = document.querySelector("[data-live-jobs][data-live-url]");
  const FINISHED = ["DONE", "ERROR", "CANCELLED"];
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 5000;
  const POLL_AFTER_FAILURES = 4; // then the socket is likely blocked (a proxy): poll meanwhile
  let cursor = root && root.dataset.liveCursor !== "" ? Number(root.dataset.liveCursor) : null;
  const seqOf = {}; // job id -> the newest change applied (events may arrive twice or late)
  let failures = 0;
  let listReload = 0;
  let banner = null;
  let leaving = false;

  function showReconnecting(on) {
    if (!root) return;
    if (!banner) {
      banner = document.createElement("p");
      banner.className = "live-banner";
      banner.setAttribute("role", "status");
      banner.dataset.liveReconnecting = "";
      banner.textContent = text("job-live-labels", "data-live-label", "reconnecting") || "Reconnecting…";
      root.prepend(banner);
    }
    banner.hidden = !on;
    document.documentElement.toggleAttribute("data-live-reconnecting", on);
  }

  function reloadList() {
    // Many jobs may arrive at once (a resume): reload the list once for all of them.
    const list = document.querySelector("#job-list[data-live-insert]");
    if (!list || !window.htmx || listReload) return;
    listReload = setTimeout(function () {
      listReload = 0;
      window.htmx.ajax("GET", list.getAttribute("hx-get"), { target: "#job-list", swap: "outerHTML" });
    }, 300);
  }

  function onJob(job, live) {
    if (typeof job.seq === "number") {
      if (seqOf[job.id] !== undefined && job.seq <= seqOf[job.id]) return; // older than what we show
      seqOf[job.id] = job.seq;
      if (live && (cursor === null || job.seq > cursor)) cursor = job.seq;
    } else {
      // A progress tick (not numbered): never let it revive a job the page shows as ended.
      const shown = document.querySelector('[data-job-id="' + CSS.escape(job.id) + '"]');
      if (shown && FINISHED.indexOf(shown.dataset.status) !== -1) return;
    }
    if (!document.querySelector('[data-job-id="' + CSS.escape(job.id) + '"]')) {
      // A job started elsewhere (another tab, the API); a workflow's page lists only its own.
      const workflow = root.dataset.liveWorkflow;
      if (job.status && (!workflow || job.workflow === workflow)) reloadList();
      return;
    }
    applyJob(job);
  }

  function onSynced(message) {
    cursor = message.cursor;
    failures = 0;
    showReconnecting(false);
    setPoll(false);
    if (message.reset) {
      // Our cursor was not honoured: what the page shows may be stale; fetch it again.
      document.querySelectorAll("[data-job-row][data-refresh-url]").forEach(refresh);
      reloadList();
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + root.dataset.liveUrl + (cursor === null ? "" : "?since=" + cursor);
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (err) {
      retry();
      return;
    }
    let synced = false;
    let pingTimer = 0;
    const openTimer = setTimeout(function () { if (socket.readyState !== WebSocket.OPEN) socket.close(); }, CONNECT_TIMEOUT_MS);
    socket.addEventListener("open", function () {
      clearTimeout(openTimer);
      pingTimer = setInterval(function () { socket.send(JSON.stringify({ type: "ping" })); }, PING_MS);
    });
    socket.addEventListener("message", function (e) {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (data.type === "job" && data.job && data.job.id) onJob(data.job, synced);
      else if (data.type === "synced") {
        synced = true;
        onSynced(data);
      } else if (data.type === "blocked") leave(); // the server logs the user out
    });
    socket.addEventListener("close", function (e) {
      clearTimeout(openTimer);
      clearInterval(pingTimer);
      if (leaving) return;
      if (e.code === 4401 || e.code === 4403) {
        leave(); // logged out or blocked: the page says so
        return;
      }
      retry();
    });
    window.comfyPortalLiveSocket = socket; // tests drop it to simulate a network cut
  }

  function leave() {
    // Once: the reload shows the login page with why (a second reload would lose that message).
    if (leaving) return;
    leaving = true;
    window.location.reload();
  }

  function retry() {
    failures += 1;
    showReconnecting(true);
    if (failures >= POLL_AFTER_FAILURES) setPoll(true);
    // Jittered exponential backoff: after a restart, a thousand tabs do not return at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, failures - 1));
    setTimeout(connect, ceiling / 2 + Math.random() * ceiling / 2);
  }

  setPoll(false);
  setInterval(tickDurations, 1000);
  if (root) setInterval(refreshQueued, QUEUED_REFRESH_MS);
  if (root) {
    if (!("WebSocket" in window)) setPoll(true);
    else connect();
  }
})();
