// Draw the dashboards' charts from the Plotly JSON the server embedded (json_script "dash-figures"),
// with the plotly.js served from static/ (no CDN: pages work offline). Tables and CSV links work without it.
(function () {
  "use strict";

  function figures() {
    const holder = document.getElementById("dash-figures");
    if (!holder) return {};
    try {
      return JSON.parse(holder.textContent) || {};
    } catch (error) {
      return {};
    }
  }

  function draw() {
    const all = figures();
    document.querySelectorAll("[data-figure]").forEach(function (element) {
      const figure = all[element.dataset.figure];
      if (!figure || typeof Plotly === "undefined") return;
      Plotly.newPlot(element, figure.data || [], figure.layout || {}, {
        displaylogo: false,
        responsive: true,
        modeBarButtonsToRemove: ["select2d", "lasso2d"],
      }).then(function () {
        element.dataset.drawn = "true";
      });
    });
    document.querySelectorAll(".budget-used[data-percent]").forEach(function (bar) {
      const percent = parseFloat(bar.dataset.percent);
      if (!isNaN(percent)) {
        bar.style.width = Math.min(percent, 100) + "%";
        if (percent > 100) bar.classList.add("over");
      }
    });
  }

  // A custom date picks the custom range; choosing a preset clears the dates.
  document.addEventListener("change", function (event) {
    const element = event.target;
    const form = element.closest("#dash-range");
    if (!form) return;
    const select = form.querySelector("select[name=range]");
    if (element.type === "date" && element.value) select.value = "custom";
    if (element === select && select.value !== "custom") {
      form.querySelectorAll("input[type=date]").forEach(function (input) { input.value = ""; });
    }
  });

  document.addEventListener("DOMContentLoaded", draw);
})();
