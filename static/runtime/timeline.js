// Fleetdeck runtime: draw a run's step timeline and keep it live while the run goes on.
// Shared by the run page and the Studio playground. Inputs, outputs and tool results are
// untrusted text: they are only ever put on the page with textContent, never as HTML.
(function () {
  "use strict";

  const PENDING = new Set(["started", "waiting", "uncertain"]);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function duration(ms) {
    if (ms === null || ms === undefined || ms === "") return "—";
    ms = Number(ms);
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return Math.floor(ms / 60000) + " min " + Math.floor((ms % 60000) / 1000) + " s";
  }

  function link(className, href, text) {
    const a = el("a", className, text);
    a.href = href;
    return a;
  }

  function details(className, title, value, open) {
    const box = el("details", className);
    if (open) box.open = true;
    box.appendChild(el("summary", null, title));
    box.appendChild(el("pre", null, pretty(value)));
    return box;
  }

  // Return the <li> for one step (the same structure as templates/runtime/_timeline.html).
  function renderStep(step) {
    const li = el("li", "step step-" + step.status);
    li.dataset.index = step.index;
    li.dataset.status = step.status;
    const head = el("div", "step-head");
    head.appendChild(el("span", "step-index", "#" + step.index));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "step-kind", step.kind_label));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("strong", "step-name", step.name));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "badge step-status status-" + step.status, step.status_label));
    const meta = [];
    if (step.tokens_in || step.tokens_out) meta.push("tokens " + step.tokens_in + "/" + step.tokens_out);
    if (Number(step.cost_usd)) meta.push(Number(step.cost_usd).toFixed(6) + " USD");
    meta.push(duration(step.latency_ms));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "muted step-meta", meta.join(" · ")));
    if (step.approval_url) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(link("step-approval", step.approval_url, "approval"));
    }
    if (step.child_run_url) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(link("step-child", step.child_run_url, "child run #" + step.child_run));
    }
    li.appendChild(head);
    if (step.input !== null && step.input !== undefined) li.appendChild(details("step-input", "Input", step.input, false));
    if (step.output !== null && step.output !== undefined) li.appendChild(details("step-output", "Output", step.output, true));
    if (step.error) li.appendChild(el("p", "step-error", step.error));
    return li;
  }

  // Put the step in the list in index order, replacing the row drawn for it before.
  function upsertStep(list, step) {
    const fresh = renderStep(step);
    const empty = list.querySelector(".timeline-empty");
    if (empty) empty.remove();
    const rows = Array.from(list.querySelectorAll("li[data-index]"));
    const same = rows.find((row) => Number(row.dataset.index) === step.index);
    if (same) {
      // Keep what the reader opened or closed.
      same.querySelectorAll("details").forEach((box) => {
        const twin = fresh.querySelector("details." + box.className.split(" ")[0]);
        if (twin) twin.open = box.open;
      });
      same.replaceWith(fresh);
      return;
    }
    const next = rows.find((row) => Number(row.dataset.index) > step.index);
    list.insertBefore(fresh, next || null);
  }

  // Return the index after which steps must be fetched again: before the first step still
  // started or waiting (its status will change), else after the last one drawn.
  function afterIndex(list) {
    const rows = Array.from(list.querySelectorAll("li[data-index]"));
    let last = -1;
    for (const row of rows) {
      const index = Number(row.dataset.index);
      if (PENDING.has(row.dataset.status)) return index - 1;
      last = Math.max(last, index);
    }
    return last;
  }

  // Show the run's status and totals in elements marked data-run-field="<name>" under root.
  function updateRunFields(root, run) {
    root.querySelectorAll("[data-run-field]").forEach((node) => {
      const name = node.dataset.runField;
      if (name === "status_label") {
        node.textContent = run.status_label;
        node.className = "badge run-status status-" + run.status;
      } else if (name === "duration") {
        node.textContent = duration(run.duration_ms);
      } else if (name === "cost_usd") {
        node.textContent = Number(run.cost_usd).toFixed(6);
      } else if (name in run) {
        node.textContent = run[name];
      }
    });
  }

  // Poll the run's steps.json every second until the run is finished; call onRun with the run each time.
  class RunWatcher {
    constructor(options) {
      this.stepsUrl = options.stepsUrl;
      this.list = options.list;
      this.onRun = options.onRun || function () {};
      this.interval = options.interval || 1000;
      this.timer = null;
      this.stopped = false;
      this.failures = 0;
    }

    start() {
      this.poll();
      return this;
    }

    stop() {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
    }

    async poll() {
      if (this.stopped) return;
      const url = this.stepsUrl + "?after=" + afterIndex(this.list);
      let data = null;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (response.status === 403 || response.status === 404) return this.stop();
        if (response.ok) data = await response.json();
      } catch (error) {
        data = null; // the network hiccuped: try again a little later
      }
      if (this.stopped) return;
      if (data) {
        this.failures = 0;
        data.steps.forEach((step) => upsertStep(this.list, step));
        this.onRun(data.run);
        if (data.run.finished) return this.stop();
      } else {
        this.failures += 1;
      }
      const wait = this.interval * Math.min(10, 1 + this.failures);
      this.timer = setTimeout(() => this.poll(), wait);
    }
  }

  window.FleetdeckTimeline = { renderStep, upsertStep, updateRunFields, RunWatcher, pretty, duration };
})();
