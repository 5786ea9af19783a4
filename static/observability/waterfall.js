/* The trace waterfall: hide and show a span's children, and open a span's attributes and events.
 *
 * The page renders every span as a table row (data-span, data-parent, data-depth); a span's details
 * (attributes, events, resource) are fetched from this server when the span is opened, once.
 * Text is always set with textContent: attribute values come from agents and are never markup.
 */
(function () {
  "use strict";

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function show(value) {
    return typeof value === "string" ? value : JSON.stringify(value, null, 1);
  }

  function facts(pairs) {
    var dl = el("dl");
    pairs.forEach(function (pair) {
      if (pair[1] === "" || pair[1] === null || pair[1] === undefined) return;
      dl.appendChild(el("dt", pair[0]));
      var dd = el("dd");
      if (pair[2]) {
        var a = el("a", pair[1]);
        a.href = pair[2];
        dd.appendChild(a);
      } else {
        dd.textContent = String(pair[1]);
      }
      dl.appendChild(dd);
    });
    return dl;
  }

  function attributeTable(attributes, className) {
    var keys = Object.keys(attributes || {}).sort();
    if (!keys.length) return el("p", "none", "muted");
    var table = el("table", null, className || "attrs");
    keys.forEach(function (key) {
      var row = table.insertRow();
      row.appendChild(el("td", key));
      row.appendChild(el("td", show(attributes[key])));
    });
    return table;
  }

  function panel(span) {
    var box = el("div", null, "span-panel");
    if (span.status_message) box.appendChild(el("p", span.status_message, "status-message"));
    box.appendChild(
      facts([
        ["Kind", span.kind],
        ["Source", span.source],
        ["Start", span.start],
        ["Duration", span.duration],
        ["Agent", span.agent ? span.agent + (span.agent_version ? " " + span.agent_version : "") : "", span.agent_url],
        ["Run", span.run_id ? "#" + span.run_id : "", span.run_url],
        ["Model", span.model],
        ["Tool", span.tool],
        ["Tokens in / out / cached", span.input_tokens || span.output_tokens ? span.input_tokens + " / " + span.output_tokens + " / " + span.cached_tokens : ""],
        ["Cost (USD)", span.cost_usd],
        ["Parent span", span.parent],
      ])
    );
    box.appendChild(el("h3", "Attributes"));
    box.appendChild(attributeTable(span.attributes, "attrs span-attributes"));
    box.appendChild(el("h3", "Events (" + (span.events || []).length + ")"));
    if ((span.events || []).length) {
      var list = el("ol", null, "span-events");
      span.events.forEach(function (event) {
        var item = el("li");
        item.appendChild(el("strong", event.name));
        if (event.time) item.appendChild(el("span", " " + event.time, "muted"));
        if (event.attributes && Object.keys(event.attributes).length) item.appendChild(attributeTable(event.attributes));
        list.appendChild(item);
      });
      box.appendChild(list);
    } else {
      box.appendChild(el("p", "none", "muted"));
    }
    if (span.resource && Object.keys(span.resource).length) {
      box.appendChild(el("h3", "Resource"));
      box.appendChild(attributeTable(span.resource));
    }
    return box;
  }

  function start() {
    var table = document.getElementById("waterfall");
    if (!table) return;
    var spansUrl = table.getAttribute("data-spans-url");
    var team = table.getAttribute("data-team");
    var details = {};
    var rows = Array.prototype.slice.call(table.querySelectorAll("tr.span-row"));
    var columns = table.tHead.rows[0].cells.length;

    function depth(row) {
      return parseInt(row.getAttribute("data-depth"), 10) || 0;
    }

    // Hide or show the rows under a span: a collapsed span hides its whole subtree; showing
    // it again keeps the subtrees of collapsed children hidden.
    function setChildren(index, open) {
      var base = depth(rows[index]);
      var closedBelow = null;
      for (var i = index + 1; i < rows.length && depth(rows[i]) > base; i++) {
        var row = rows[i];
        var d = depth(row);
        if (closedBelow !== null && d > closedBelow) {
          hide(row, true);
          continue;
        }
        closedBelow = null;
        hide(row, !open);
        var toggle = row.querySelector(".wf-toggle");
        if (open && toggle && toggle.getAttribute("aria-expanded") === "false") closedBelow = d;
      }
    }

    function hide(row, hidden) {
      row.hidden = hidden;
      var panelRow = row.nextElementSibling;
      if (panelRow && panelRow.classList.contains("span-detail")) panelRow.hidden = hidden;
    }

    function toggleChildren(row, open) {
      var toggle = row.querySelector(".wf-toggle");
      if (!toggle) return;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      setChildren(rows.indexOf(row), open);
    }

    function togglePanel(row) {
      var button = row.querySelector(".wf-open");
      var next = row.nextElementSibling;
      if (next && next.classList.contains("span-detail")) {
        next.remove();
        button.setAttribute("aria-expanded", "false");
        row.classList.remove("wf-selected");
        return;
      }
      var spanId = row.getAttribute("data-span");
      var detailRow = document.createElement("tr");
      detailRow.className = "span-detail";
      detailRow.setAttribute("data-detail-of", spanId);
      var cell = document.createElement("td");
      cell.colSpan = columns;
      detailRow.appendChild(cell);
      row.parentNode.insertBefore(detailRow, row.nextSibling);
      button.setAttribute("aria-expanded", "true");
      row.classList.add("wf-selected");
      if (details[spanId]) {
        cell.appendChild(panel(details[spanId]));
        return;
      }
      cell.appendChild(el("p", "Loading the span's attributes…", "muted"));
      fetch(spansUrl + spanId + "/?team=" + encodeURIComponent(team), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("the server answered " + response.status);
          return response.json();
        })
        .then(function (span) {
          details[spanId] = span;
          cell.textContent = "";
          cell.appendChild(panel(span));
        })
        .catch(function (error) {
          cell.textContent = "";
          cell.appendChild(el("p", "Could not load this span's details: " + error.message + ". Reload the page to try again.", "errors"));
        });
    }

    table.addEventListener("click", function (event) {
      var target = event.target.closest("button");
      if (!target) return;
      var row = target.closest("tr.span-row");
      if (!row) return;
      if (target.classList.contains("wf-toggle")) {
        toggleChildren(row, target.getAttribute("aria-expanded") === "false");
      } else if (target.classList.contains("wf-open")) {
        togglePanel(row);
      }
    });

    document.querySelectorAll("[data-waterfall]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var open = button.getAttribute("data-waterfall") === "expand-all";
        rows.forEach(function (row) {
          var toggle = row.querySelector(".wf-toggle");
          if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
          if (depth(row) > 0) hide(row, !open);
        });
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
