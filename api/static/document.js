// Document page: scroll the paragraph named in the URL fragment into view and highlight it,
// on load and whenever the fragment changes (a citation link opened in this tab).
(function () {
  "use strict";
  var current = null;

  function targetFromHash() {
    var id = location.hash.slice(1);
    if (!id) return null;
    try { id = decodeURIComponent(id); } catch (e) { /* keep the raw id */ }
    var el = document.getElementById(id);
    return el && el.classList.contains("passage") ? el : null;
  }

  function highlight() {
    var el = targetFromHash();
    if (current && current !== el) current.classList.remove("is-highlighted");
    if (!el) return;
    current = el;
    el.classList.add("is-highlighted");
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.scrollIntoView({ block: "center", behavior: reduce ? "auto" : "smooth" });
    el.focus({ preventScroll: true });
  }

  window.addEventListener("hashchange", highlight);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", highlight);
  else highlight();
})();
