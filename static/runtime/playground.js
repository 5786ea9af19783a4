// The Studio playground: run the draft without leaving the page and draw its timeline below the form.
// Without JavaScript the form posts normally and the browser lands on the run's page.
document.addEventListener("DOMContentLoaded", () => {
  "use strict";
  const form = document.getElementById("playground-form");
  const T = window.FleetdeckTimeline;
  if (!form || !T || !window.fetch) return;
  const error = document.getElementById("playground-error");
  const result = document.getElementById("playground-result");
  const list = document.getElementById("playground-timeline");
  const runLink = document.getElementById("playground-run-link");
  const status = document.getElementById("playground-status");
  const totals = document.getElementById("playground-totals");
  const output = document.getElementById("playground-output");
  const runError = document.getElementById("playground-run-error");
  const button = form.querySelector("button[type=submit]");
  let watcher = null;

  function showRun(run) {
    status.textContent = run.status_label + (run.simulated ? " · simulated" : "");
    status.className = "badge run-status status-" + run.status;
    totals.textContent =
      run.step_count + " steps · tokens " + run.tokens_in + "/" + run.tokens_out + " · " +
      Number(run.cost_usd).toFixed(6) + " USD · " + T.duration(run.duration_ms);
    output.hidden = run.output === null || run.output === undefined;
    if (!output.hidden) output.textContent = T.pretty(run.output);
    runError.hidden = !run.error;
    runError.textContent = run.error || "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    let response = null;
    let data = {};
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      data = await response.json().catch(() => ({}));
    } catch (failure) {
      error.textContent = "The server could not be reached: try again.";
      return;
    } finally {
      button.disabled = false;
    }
    if (!response.ok) {
      error.textContent = data.error || "Not run (HTTP " + response.status + ").";
      return;
    }
    if (watcher) watcher.stop();
    list.replaceChildren();
    runLink.textContent = "#" + data.id;
    runLink.href = data.detail_url;
    result.hidden = false;
    showRun(data);
    watcher = new T.RunWatcher({ stepsUrl: data.steps_url, list: list, onRun: showRun }).start();
  });
});
