// The run page: keep the timeline, status and totals live until the run is finished.
document.addEventListener("DOMContentLoaded", () => {
  "use strict";
  const root = document.getElementById("run");
  const list = document.getElementById("timeline");
  if (!root || !list || !window.FleetdeckTimeline || root.dataset.finished === "true") return;
  const T = window.FleetdeckTimeline;

  function showResult(run) {
    const output = document.getElementById("run-output");
    const error = document.getElementById("run-error");
    const pending = document.getElementById("run-pending");
    if (run.output !== null && run.output !== undefined) {
      output.textContent = T.pretty(run.output);
      output.hidden = false;
    }
    if (run.error) {
      error.textContent = run.error + (run.error_code ? " (" + run.error_code + ")" : "");
      error.hidden = false;
    }
    if (pending) pending.hidden = run.finished;
  }

  new T.RunWatcher({
    stepsUrl: root.dataset.stepsUrl,
    list: list,
    onRun: (run) => {
      T.updateRunFields(root, run);
      showResult(run);
      if (run.finished) {
        root.dataset.finished = "true";
        const cancel = document.getElementById("cancel-form");
        if (cancel) cancel.hidden = true;
        const note = document.getElementById("live-note");
        if (note) note.hidden = true;
      }
    },
  }).start();
});
