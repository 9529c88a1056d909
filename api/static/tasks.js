// Task tracker page: filter without reloading. The server renders the same page for any filter, so this
// fetches /nhiem-vu?… and swaps the count, the export links and the table; without JavaScript the form's
// ordinary GET does the same.
(function () {
  "use strict";
  var form = document.getElementById("task-filter");
  if (!form || !window.fetch || !window.DOMParser || !window.URLSearchParams) return;
  var REGIONS = ["task-summary", "task-results"];
  var timer = null;
  var controller = null;
  var agency = form.elements.namedItem("agency");

  function queryString() {
    var params = new URLSearchParams();
    var data = new FormData(form);
    data.forEach(function (value, key) {
      var text = String(value).trim();
      if (text) params.append(key, text);
    });
    return params.toString();
  }

  function update() {
    clearTimeout(timer);
    var qs = queryString();
    var url = form.getAttribute("action") + (qs ? "?" + qs : "");
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    form.setAttribute("aria-busy", "true");
    fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin", signal: controller && controller.signal })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        REGIONS.forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        history.replaceState(null, "", url);
        form.removeAttribute("aria-busy");
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") return;
        form.removeAttribute("aria-busy");
        form.submit(); // the ordinary page load still works
      });
  }

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(update, ms);
  }

  function isKnownAgency(value) {
    var list = document.getElementById("agency-list");
    var key = value.trim().toLowerCase();
    if (!list || !key) return !key;
    return Array.prototype.some.call(list.options, function (o) { return o.value.toLowerCase() === key; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    update();
  });
  form.addEventListener("input", function (event) {
    var field = event.target;
    if (field === agency) {
      // while a name is half typed there is nothing to show; a picked suggestion or a cleared box filters
      if (isKnownAgency(field.value)) later(0);
    } else if (field.name === "q") {
      later(350);
    }
  });
  form.addEventListener("change", function (event) {
    if (event.target.name !== "q") update();
  });
})();
