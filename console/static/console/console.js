// Lookglass console: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // Times arrive as ISO 8601 in UTC; show them in the viewer's zone.
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.title = el.textContent; el.textContent = format.format(d); }
    });
  }

  // Time filters (`data-local-input`): shown and typed in the viewer's zone, sent as ISO 8601 in UTC.
  // The server reads a time without an offset as UTC, so the page works the same without this.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localValue(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function asUtc(raw) {
    raw = raw.trim().replace(" ", "T");
    if (/^\d{4}-\d\d-\d\d$/.test(raw)) raw += "T00:00";
    if (!/([zZ]|[+-]\d\d:?\d\d)$/.test(raw)) raw += "Z";
    var d = new Date(raw);
    return isNaN(d) ? null : d;
  }
  function localInputs(root) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time";
    root.querySelectorAll("input[data-local-input]").forEach(function (input) {
      var d = input.value.trim() ? asUtc(input.value) : null;
      if (input.value.trim() && !d) return;  // not a time: left as typed, the server says why
      input.type = "datetime-local";
      input.step = "1";
      input.removeAttribute("placeholder");
      if (d) input.value = localValue(d);
      var label = input.closest("label");
      var text = label && label.firstChild;
      if (text && text.nodeType === 3) text.nodeValue = text.nodeValue.replace("(UTC)", "(" + zone + ")");
      if (input.form && !input.form.hasAttribute("data-local-times")) {
        input.form.setAttribute("data-local-times", "");
        input.form.addEventListener("submit", function () {
          input.form.querySelectorAll("input[data-local-input]").forEach(function (field) {
            if (field.type !== "datetime-local") return;
            var local = field.value ? new Date(field.value) : null;  // no offset: the viewer's zone
            field.type = "text";
            field.value = local && !isNaN(local) ? local.toISOString() : "";
          });
        });
      }
    });
  }

  // The project switcher navigates on change.
  function switcher() {
    var form = document.querySelector("[data-project-switcher]");
    if (!form) return;
    var select = form.querySelector("select");
    select.addEventListener("change", function () { window.location.href = select.value; });
  }

  // Destructive forms ask first.
  function confirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  // The explorer's search sends only the fields filled in: an address of twenty empty fields is
  // hard to read, share or save. Fields are disabled only for the submit and enabled again when the
  // page comes back from the history (the back button), so the form is never left unusable.
  function compactSearch() {
    document.querySelectorAll("form.lg-search").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[name], select[name]").forEach(function (field) {
          if (field.type === "checkbox" || field.type === "radio" || field.type === "submit") return;
          if (field.value === "") field.disabled = true;
        });
      });
      window.addEventListener("pageshow", function () {
        form.querySelectorAll("[name]:disabled").forEach(function (field) { field.disabled = false; });
      });
    });
  }

  // The observation tree: fold a node's descendants (the following nodes deeper than it).
  function tree() {
    document.querySelectorAll("[data-tree]").forEach(function (table) {
      var nodes = Array.prototype.slice.call(table.querySelectorAll("tbody.lg-node"));
      nodes.forEach(function (node, i) {
        var depth = +node.dataset.depth;
        var next = nodes[i + 1];
        var button = node.querySelector(".lg-toggle");
        if (!button || !next || +next.dataset.depth <= depth) return;
        button.hidden = false;
        button.addEventListener("click", function () {
          var open = button.getAttribute("aria-expanded") === "true";
          button.setAttribute("aria-expanded", open ? "false" : "true");
          button.textContent = open ? "▸" : "▾";
          for (var j = i + 1; j < nodes.length && +nodes[j].dataset.depth > depth; j++) {
            if (open) { nodes[j].classList.add("lg-hidden"); }
            else {
              nodes[j].classList.remove("lg-hidden");
              var inner = nodes[j].querySelector(".lg-toggle");
              if (inner) { inner.setAttribute("aria-expanded", "true"); inner.textContent = "▾"; }
            }
          }
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document); localInputs(document); switcher(); confirms(); tree(); compactSearch();
  });
})();
